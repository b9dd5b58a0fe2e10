import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';
import type { CliHelpers } from './provenance.js';
import { defaultCatalogPath } from '../util/paths.js';
import { addStoreOption, openRecorder, recordAll } from './store.js';

/** The library modules this file's commands run, imported when a command runs (start-up). */
async function lib() {
  const [m0, m1, m2, m3] = await Promise.all([import('../source/open.js'), import('../packages/withbase.js'), import('../sbom/formats.js'), import('../provenance/catalog.js')]);
  return { ...m0, ...m1, ...m2, ...m3 };
}


export function registerSbom(program: Command, h: CliHelpers): void {
  if (!h.want('sbom')) return;
  addStoreOption(h.addRegistryFlags(
    program
      .command('sbom')
      .description('list every installed OS package of an image (dpkg, apk, rpm), each with the layer that installed it')
      .argument('<image>')
      .option('--format <format>', 'cyclonedx (1.5), spdx (2.3) or json (Plinth\'s own)', 'json')
      .option('--platform <os/arch[/variant]>', 'platform of a multi-platform image (default: this host\'s)')
      .option('--catalog <file>', 'catalog of known bases, to mark packages as base or image')
      .option('-o, --output <file>', 'write the document to a file instead of standard output')
      .option('--attest', 'also attest the SBOM about the image (cyclonedx or spdx format; needs --key): an in-toto statement signed with a cosign key, stored next to the image')
      .option('--key <ref>', 'cosign private key for --attest')
      .option('--attest-format <format>', 'bundle (a Sigstore bundle referrer) or legacy (the .att tag)', 'bundle'),
  )).action(async (image: string, o: Record<string, unknown> & { format: string; platform?: string; catalog?: string; output?: string; attest?: boolean; key?: string; attestFormat: string; store?: unknown }) => {
    if (o.attest && !o.key) throw new PlinthError('USAGE', '--attest needs --key');
    // The key (and its password) first: a wrong one should not wait for the whole read.
    const signer = o.attest ? await (await import('../sign/keys.js')).openSigner(o.key!) : undefined;
    if (o.attest && o.format === 'json') throw new PlinthError('USAGE', '--attest attests a standard SBOM: use --format cyclonedx or spdx');
    if (o.attestFormat !== 'bundle' && o.attestFormat !== 'legacy') throw new PlinthError('USAGE', `--attest-format must be bundle or legacy, got "${o.attestFormat}"`);
    const { openSource, inventoryWithBase, loadCatalog, cycloneDx, spdx, plinthJson } = await lib();
    const fmt = { cyclonedx: cycloneDx, spdx, json: plinthJson }[o.format as 'json'];
    if (!fmt) throw new PlinthError('USAGE', `--format must be cyclonedx, spdx or json, got "${o.format}"`);
    if (o.platform === 'all') throw new PlinthError('USAGE', 'an SBOM describes one image: choose one platform');
    const meta = await openRecorder(o.store);
    let src;
    try {
      src = await openSource(image, await h.openOptions(o, image));
    } catch (e) {
      await meta?.close();
      throw e;
    }
    try {
      const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined });
      const tty = process.stderr.isTTY === true;
      const [r] = await inventoryWithBase(src, h.platformChoice(o.platform), catalog, tty ? (i, n, d) => process.stderr.write(`\rreading layer ${i + 1}/${n} ${d.slice(0, 19)}…`) : undefined);
      if (tty) process.stderr.write('\r\x1b[K');
      const doc = fmt(r!.inv);
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (o.output) await writeFile(o.output, text);
      else process.stdout.write(text);
      if (o.attest) {
        const { attestDigest } = await import('../sign/index.js');
        const type = o.format === 'cyclonedx' ? 'https://cyclonedx.org/bom' : 'https://spdx.dev/Document';
        const a = await attestDigest(image, r!.inv.image.digest, signer!, type, doc, { format: o.attestFormat, registry: await h.openOptions(o, image) });
        process.stderr.write(`Attested ${type} about ${a.digest} (${a.format}, ${a.location})\n`);
      }
      if (meta) {
        const [{ inventoryRecord, provenanceRecord }, { parseLocation }] = await Promise.all([import('../store/ingest.js'), import('../source/open.js')]);
        const loc = parseLocation(image);
        await recordAll(meta, [provenanceRecord(loc, r!.provenance, catalog), inventoryRecord(loc, r!.inv, "sbom", r!.provenance.image.index)]);
      }
    } finally {
      await src.close();
      await meta?.close().catch(() => {});
    }
  });
}
