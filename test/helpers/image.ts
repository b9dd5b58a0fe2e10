/**
 * A tiny, deterministic OCI image (one gzip layer holding one file) for seeding registries
 * and OCI layouts in tests, plus a minimal push over plain fetch that does not depend on
 * the code under test.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface TestBlob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export interface TestImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: TestBlob;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function blob(mediaType: string, data: Buffer): TestBlob {
  return { mediaType, digest: sha256(data), size: data.length, data };
}

async function tarOf(files: Record<string, Buffer | string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) {
    p.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, Buffer.from(content));
  }
  p.finalize();
  return done;
}

/** A linux/amd64 image whose single layer holds `/hello.txt` with `content` (default 'hello from plinth'). */
export async function makeTestImage(content: string = 'hello from plinth'): Promise<TestImage> {
  const tar = await tarOf({ 'hello.txt': content });
  const layer = blob(OCI_LAYER_GZIP, gzipSync(tar));
  const config = blob(
    OCI_CONFIG,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
        history: [{ created_by: 'plinth test' }],
      }),
    ),
  );
  const manifest = blob(
    OCI_MANIFEST,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      }),
    ),
  );
  return { config, layers: [layer], manifest };
}

/** Write `image` as an OCI image layout in `dir` (created if needed), tagged `tag`. */
export async function writeOciLayout(dir: string, image: TestImage, tag = 'latest'): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  for (const b of [image.config, ...image.layers, image.manifest]) {
    await writeFile(join(blobs, b.digest.slice('sha256:'.length)), b.data);
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: image.manifest.mediaType,
        digest: image.manifest.digest,
        size: image.manifest.size,
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

export interface PushTarget {
  url: string;
  authHeaders(scopes?: string[]): Promise<Record<string, string>>;
}

/** Monolithic upload of one blob: POST /blobs/uploads/ then PUT ?digest=. */
export async function pushBlob(target: PushTarget, repo: string, b: Pick<TestBlob, 'digest' | 'data'>, headers?: Record<string, string>): Promise<void> {
  const auth = headers ?? (await target.authHeaders([`repository:${repo}:pull,push`]));
  const start = await fetch(`${target.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`pushBlob: POST uploads answered ${start.status}`);
  const loc = new URL(start.headers.get('location') ?? '', `${target.url}/`);
  loc.searchParams.set('digest', b.digest);
  const put = await fetch(loc, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(b.data.length) },
    body: b.data,
  });
  const text = await put.text();
  if (put.status !== 201) throw new Error(`pushBlob: PUT ${loc.pathname} answered ${put.status}: ${text}`);
}

/** Push all blobs and the manifest of `image` as `repo:tag`. */
export async function pushImage(target: PushTarget, repo: string, tag: string, image: TestImage): Promise<void> {
  const auth = await target.authHeaders([`repository:${repo}:pull,push`]);
  for (const b of [image.config, ...image.layers]) await pushBlob(target, repo, b, auth);
  const res = await fetch(`${target.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': image.manifest.mediaType },
    body: image.manifest.data,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`pushImage: PUT manifest answered ${res.status}: ${text}`);
}
