import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, buildIndex } from '../source/memory.js';
import { copyImage } from '../source/copy.js';
import { openDestination, openSource } from '../source/open.js';
import { inspect } from '../inspect/inspect.js';
import { startLocalRegistry } from '../registry/local.js';

/**
 * The README's first command: build a small two-platform image into an OCI layout, copy it into a
 * registry started on loopback, read it back and inspect it — no server to set up by hand.
 */
export async function runDemo(o: { keep: boolean; log: (s: string) => void }): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-demo-'));
  const log = o.log;
  const reg = await startLocalRegistry({ dir: path.join(dir, 'registry') });
  try {
    log(`1. registry started on ${reg.url} (docker-registry, storage in ${reg.dir})`);
    const images = [];
    for (const architecture of ['amd64', 'arm64']) {
      images.push(
        await buildImage({
          platform: { os: 'linux', architecture, ...(architecture === 'arm64' ? { variant: 'v8' } : {}) },
          layers: [
            [{ path: 'etc/', type: 'directory' }, { path: 'etc/os-release', content: 'ID=plinth-demo\nVERSION_ID=1\n' }],
            [{ path: 'app/', type: 'directory' }, { path: 'app/hello.txt', content: `hello from ${architecture}\n` }],
          ],
          labels: { 'org.opencontainers.image.title': 'plinth-demo', 'org.opencontainers.image.source': 'https://example.com/plinth-demo' },
          annotations: { 'org.opencontainers.image.base.name': 'scratch' },
          cmd: ['/app/hello.txt'],
        }),
      );
    }
    const index = buildIndex(images);
    const layoutDir = path.join(dir, 'layout');
    const layout = await openDestination(`oci:${layoutDir}:demo`);
    const built = await copyImage(index.source, layout);
    await layout.close();
    log(`2. built a two-platform image into oci:${layoutDir}:demo  ${built.digest}`);
    const src = await openSource(`oci:${layoutDir}:demo`);
    const dst = await openDestination(`${reg.host}/plinth/demo:1.0`);
    const pushed = await copyImage(src, dst);
    await src.close();
    await dst.close();
    log(`3. copied it to ${reg.host}/plinth/demo:1.0  ${pushed.digest} (${pushed.blobs.copied} blobs, digests unchanged: ${pushed.digest === built.digest})`);
    const remote = await openSource(`${reg.host}/plinth/demo:1.0`);
    const info = await inspect(remote, 'all');
    await remote.close();
    log(`4. plinth inspect ${reg.host}/plinth/demo:1.0 --platform all --format json:`);
    log(JSON.stringify({ digest: info.digest, mediaType: info.mediaType, platforms: info.platforms, images: info.images.map((i) => ({ digest: i.digest, platform: i.platform, size: i.size, labels: i.labels, layers: i.layers.length })) }, null, 2));
  } finally {
    await reg.stop();
    if (!o.keep) await rm(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}
