import { PlinthError } from '../util/errors.js';
import { parseImageReference } from '../oci/reference.js';
import type { DeploymentRecord } from './store.js';

/**
 * What runs in a cluster, from `kubectl get pods -A -o json` (and the `-o json` of Deployments,
 * DaemonSets, StatefulSets, ReplicaSets, Jobs, CronJobs): one DeploymentRecord per container, with
 * the digest the node pulled (`status.containerStatuses[].imageID`) when there is one.
 */

type Obj = Record<string, unknown>;

const WORKLOAD_KINDS = new Set(['Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'Job', 'CronJob', 'ReplicationController']);
const MAX_ITEMS = 200_000;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function labelsOf(meta: Obj | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(meta?.labels) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * The digest and repository an imageID names. Runtimes write `docker-pullable://REPO@sha256:…`,
 * `REPO@sha256:…` or a bare `sha256:…` (with containerd often the image's config digest, not a
 * manifest digest: it is not used).
 */
export function parseImageId(imageId: string | undefined): { repository: string; digest: string } | null {
  if (!imageId) return null;
  const s = imageId.replace(/^docker-pullable:\/\//, '').replace(/^docker:\/\//, '');
  const at = s.lastIndexOf('@');
  if (at <= 0) return null;
  const digest = s.slice(at + 1);
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) return null;
  try {
    const ref = parseImageReference(s.slice(0, at));
    return { repository: ref.name, digest };
  } catch {
    return null;
  }
}

/** The workload that owns a pod: its controller, with a ReplicaSet of a Deployment named by the Deployment. */
function ownerOf(meta: Obj, labels: Record<string, string>): { kind: string; name: string } {
  const owners = arr(meta.ownerReferences).map(obj).filter((o): o is Obj => o !== undefined);
  const ctl = owners.find((o) => o.controller === true) ?? owners[0];
  const kind = str(ctl?.kind);
  const name = str(ctl?.name);
  if (!kind || !name) return { kind: 'Pod', name: str(meta.name) ?? str(meta.generateName) ?? '(unnamed)' };
  const hash = labels['pod-template-hash'];
  if (kind === 'ReplicaSet' && hash && name.endsWith(`-${hash}`)) return { kind: 'Deployment', name: name.slice(0, -hash.length - 1) };
  return { kind, name };
}

function podSpecOf(item: Obj, kind: string): Obj | undefined {
  const spec = obj(item.spec);
  if (kind === 'Pod') return spec;
  if (kind === 'CronJob') return obj(obj(obj(obj(spec?.jobTemplate)?.spec)?.template)?.spec);
  return obj(obj(spec?.template)?.spec);
}

export interface InventoryParse {
  records: DeploymentRecord[];
  /** Items that were skipped, with why (not a workload kind, no containers…). */
  skipped: Array<{ item: string; reason: string }>;
  pods: number;
  workloads: number;
}

/** Parse kubectl's JSON (a List, or a single object) into deployment records for `cluster`. */
export function parseKubeInventory(text: string, cluster: string, at: string = new Date().toISOString()): InventoryParse {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new PlinthError('USAGE', `inventory is not JSON (use kubectl get pods -A -o json): ${(e as Error).message}`);
  }
  const root = obj(doc);
  if (!root) throw new PlinthError('USAGE', 'inventory must be a JSON object: a List (kubectl get … -o json) or one Pod/workload');
  const items = Array.isArray(root.items) ? root.items : str(root.kind) ? [root] : null;
  if (!items) throw new PlinthError('USAGE', 'inventory has no "items" and no "kind": expected the output of kubectl get pods -A -o json');
  if (items.length > MAX_ITEMS) throw new PlinthError('USAGE', `inventory has ${items.length} items, more than the ${MAX_ITEMS} one import takes; import per namespace (each -n NS list only updates its namespace) or with --partial`);
  const out: InventoryParse = { records: [], skipped: [], pods: 0, workloads: 0 };
  items.forEach((raw, i) => {
    const item = obj(raw);
    const kind = str(item?.kind);
    const meta = obj(item?.metadata);
    const label = `${kind ?? '?'} ${str(meta?.namespace) ?? ''}/${str(meta?.name) ?? `#${i}`}`;
    if (!item || !kind || !meta) return void out.skipped.push({ item: label, reason: 'not a Kubernetes object (kind and metadata)' });
    if (kind !== 'Pod' && !WORKLOAD_KINDS.has(kind)) return void out.skipped.push({ item: label, reason: `kind ${kind} runs no containers` });
    const spec = podSpecOf(item, kind);
    if (!spec) return void out.skipped.push({ item: label, reason: 'no pod spec' });
    const labels = labelsOf(kind === 'Pod' ? meta : obj(obj(obj(item.spec)?.template)?.metadata) ?? meta);
    const namespace = str(meta.namespace) ?? 'default';
    const workload = kind === 'Pod' ? ownerOf(meta, labels) : { kind, name: str(meta.name) ?? '(unnamed)' };
    if (kind === 'Pod') out.pods++;
    else out.workloads++;
    const status = obj(item.status);
    const statuses = new Map<string, Obj>();
    for (const f of ['initContainerStatuses', 'containerStatuses', 'ephemeralContainerStatuses']) {
      for (const s of arr(status?.[f])) {
        const so = obj(s);
        const n = str(so?.name);
        if (so && n) statuses.set(n, so);
      }
    }
    let containers = 0;
    for (const f of ['initContainers', 'containers', 'ephemeralContainers']) {
      for (const c of arr(spec[f])) {
        const co = obj(c);
        const image = str(co?.image);
        const name = str(co?.name) ?? null;
        if (!image) continue;
        containers++;
        let repository: string | null = null;
        let tag: string | null = null;
        let digest: string | null = null;
        try {
          const ref = parseImageReference(image);
          repository = ref.name;
          digest = ref.digest ?? null;
          tag = ref.digest ? null : ref.tag ?? null;
        } catch {
          /* kept as named; the store knows it by reference only */
        }
        const st = name ? statuses.get(name) : undefined;
        const pulled = parseImageId(str(st?.imageID));
        if (pulled && !digest) {
          digest = pulled.digest;
          repository ??= pulled.repository;
        }
        const owner = labels.owner ?? labels.team ?? labels['app.kubernetes.io/part-of'] ?? null;
        out.records.push({ cluster, namespace, kind: workload.kind, name: workload.name, container: name, image, digest, repository, tag: digest && pulled ? tag : null, labels, owner, at, via: 'inventory' });
      }
    }
    if (!containers) out.skipped.push({ item: label, reason: 'no containers with an image' });
  });
  return out;
}
