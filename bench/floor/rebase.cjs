'use strict';
// The Node floor of `plinth rebase` (bench/rebase.ts runs it beside plinth and crane): a plain
// Node script that makes the requests a rebase needs, on the best schedule, and nothing else: no
// CLI, no bundle, no validation of what the registry sends, no OS-release check, no error
// handling. It reads the three manifests and configs, splices the config the way mutate.Rebase
// does (single-platform images, plain history), mounts the new base's layers, and uploads the new
// config and manifest. No Node program that rebases an image in a registry finishes faster.
//   node bench/floor/rebase.cjs HOST/REPO:TAG OLD_BASE_REF NEW_BASE_REF NEW_TAG
const http = require('node:http');
const crypto = require('node:crypto');

const [image, oldRef, newRef, newTag] = process.argv.slice(2);
const host = image.slice(0, image.indexOf('/'));
const [hostname, port] = host.split(':');
const agent = new http.Agent({ keepAlive: true });
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json';
const req = (method, p, headers = {}, body) =>
  new Promise((resolve, reject) => {
    const r = http.request({ hostname, port, path: p, method, agent, headers: { ...headers, ...(body ? { 'content-length': body.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    r.on('error', reject);
    r.end(body);
  });
const split = (ref) => {
  const rest = ref.slice(ref.indexOf('/') + 1);
  const at = rest.indexOf('@');
  const colon = rest.lastIndexOf(':');
  return at >= 0 ? [rest.slice(0, at), rest.slice(at + 1)] : [rest.slice(0, colon), rest.slice(colon + 1)];
};
const sha256 = (b) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

async function main() {
  await req('GET', '/v2/');
  const refs = [image, oldRef, newRef].map(split);
  const manifests = await Promise.all(refs.map(([repo, ref]) => req('GET', `/v2/${repo}/manifests/${ref}`, { accept: ACCEPT }).then((r) => JSON.parse(r.body))));
  const configs = await Promise.all(manifests.map((m, i) => req('GET', `/v2/${refs[i][0]}/blobs/${m.config.digest}`).then((r) => JSON.parse(r.body))));
  const [app, oldBase, newBase] = configs;
  const [appM, oldM, newM] = manifests;
  const repo = refs[0][0];
  const kept = oldBase.rootfs.diff_ids.length;
  const cfg = { ...app, rootfs: { type: 'layers', diff_ids: [...newBase.rootfs.diff_ids, ...app.rootfs.diff_ids.slice(kept)] }, history: [...(newBase.history ?? []), ...(app.history ?? []).slice((oldBase.history ?? []).length)] };
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const cfgDigest = sha256(cfgBytes);
  const upload = async () => {
    const start = await req('POST', `/v2/${repo}/blobs/uploads/`);
    const loc = start.headers.location;
    await req('PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${cfgDigest}`, { 'content-type': 'application/octet-stream' }, cfgBytes);
  };
  await Promise.all([upload(), ...newM.layers.map((l) => req('POST', `/v2/${repo}/blobs/uploads/?mount=${l.digest}&from=${refs[2][0]}`))]);
  const manifest = { ...appM, config: { ...appM.config, digest: cfgDigest, size: cfgBytes.length }, layers: [...newM.layers, ...appM.layers.slice(oldM.layers.length)] };
  const mBytes = Buffer.from(JSON.stringify(manifest));
  const put = await req('PUT', `/v2/${repo}/manifests/${newTag}`, { 'content-type': appM.mediaType }, mBytes);
  return put.status === 201 ? sha256(mBytes) : `failed: ${put.status} ${put.body}`;
}

main().then((out) => {
  agent.destroy();
  process.stdout.write(`${out}\n`);
  process.exitCode = out.startsWith('sha256:') ? 0 : 1;
});
