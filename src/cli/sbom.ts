import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';
import { openSource } from '../source/open.js';
import { resolveRoot, selectImages } from '../source/image.js';
import { inventory, type Inventory } from '../packages/inventory.js';
import { cycloneDx, plinthJson, spdx } from '../sbom/formats.js';
import { defaultCatalogPath, loadCatalog } from '../provenance/catalog.js';
import { provenanceOf } from '../provenance/report.js';
import type { CliHelpers } from './provenance.js';
import type { ImageSource } from '../source/types.js';
import type { PlatformChoice } from '../source/image.js';

/** Inventory of each selected platform image, with base/image attribution when the base is known. */
export async function inventories(src: ImageSource, platform: PlatformChoice, catalogFile: string | undefined, progress: boolean): Promise<Array<{ inv: Inventory; baseLayers: number | null; base: string | null }>> {
  const catalog = await loadCatalog(catalogFile ?? defaultCatalogPath(), { mustExist: catalogFile !== undefined });
  const root = await resolveRoot(src);
  const images = await selectImages(src, root, platform);
  const out = [];
  for (const img of images) {
    const prov = await provenanceOf(src, img, root.kind === 'index' ? root : undefined, { catalog });
    const baseLayers = prov.base?.layers.base ?? null;
    const inv = await inventory(src, img, {
      baseLayers,
      ...(progress ? { onLayer: (i: number, n: number, d: string) => process.stderr.write(`\rreading layer ${i + 1}/${n} ${d.slice(0, 19)}…`) } : {}),
    });
    if (progress) process.stderr.write('\r\x1b[K');
    out.push({ inv, baseLayers, base: prov.where.base });
  }
  return out;
}

export function registerSbom(program: Command, h: CliHelpers): void {
  h.addRegistryFlags(
    program
      .command('sbom')
      .description('list every installed OS package of an image (dpkg, apk, rpm), each with the layer that installed it')
      .argument('<image>')
      .option('--format <format>', 'cyclonedx (1.5), spdx (2.3) or json (Plinth\'s own)', 'json')
      .option('--platform <os/arch[/variant]>', 'platform of a multi-platform image (default: this host\'s)')
      .option('--catalog <file>', 'catalog of known bases, to mark packages as base or image')
      .option('-o, --output <file>', 'write the document to a file instead of standard output'),
  ).action(async (image: string, o: Record<string, unknown> & { format: string; platform?: string; catalog?: string; output?: string }) => {
    const fmt = { cyclonedx: cycloneDx, spdx, json: plinthJson }[o.format as 'json'];
    if (!fmt) throw new PlinthError('USAGE', `--format must be cyclonedx, spdx or json, got "${o.format}"`);
    if (o.platform === 'all') throw new PlinthError('USAGE', 'an SBOM describes one image: choose one platform');
    const src = await openSource(image, await h.openOptions(o));
    try {
      const [r] = await inventories(src, h.platformChoice(o.platform), o.catalog, process.stderr.isTTY === true);
      const text = `${JSON.stringify(fmt(r!.inv), null, 2)}\n`;
      if (o.output) await writeFile(o.output, text);
      else process.stdout.write(text);
    } finally {
      await src.close();
    }
  });
}
