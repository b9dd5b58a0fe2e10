import type { ImageSource } from '../source/types.js';
import { resolveRoot, selectImages, type PlatformChoice } from '../source/image.js';
import type { Catalog } from '../provenance/catalog.js';
import { addContents, provenanceOf, type ProvenanceOptions, type ProvenanceReport } from '../provenance/report.js';
import { inventory, type Inventory } from './inventory.js';

/**
 * The inventory of each selected platform image with its packages marked base or image: the
 * base's layer count comes from provenance (declared bases, build materials, the catalog). The
 * provenance report gets what the layers showed (OS release, package counts per layer).
 */
export async function inventoryWithBase(
  src: ImageSource,
  platform: PlatformChoice,
  catalog: Catalog,
  onLayer?: (i: number, total: number, digest: string) => void,
  provenanceOptions: Omit<ProvenanceOptions, 'catalog'> = {},
): Promise<Array<{ inv: Inventory; base: { name: string | null; digest: string | null; layers: number | null } | null; provenance: ProvenanceReport }>> {
  const root = await resolveRoot(src);
  const images = await selectImages(src, root, platform);
  const out = [];
  for (const img of images) {
    const prov = await provenanceOf(src, img, root.kind === 'index' ? root : undefined, { ...provenanceOptions, catalog });
    const baseLayers = prov.base?.layers.base ?? null;
    const inv = await inventory(src, img, { baseLayers, ...(onLayer ? { onLayer } : {}) });
    addContents(prov, inv);
    out.push({ inv, base: prov.base ? { name: prov.base.name, digest: prov.base.digest, layers: baseLayers } : null, provenance: prov });
  }
  return out;
}
