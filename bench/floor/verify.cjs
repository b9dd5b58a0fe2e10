'use strict';
// The Node floor of `plinth verify --key` (bench/verify.ts runs it beside plinth and cosign): a
// plain Node script that makes the requests a verification needs, on the best schedule, and checks
// the signature with node:crypto, and nothing else: no CLI, no bundle, no validation of what the
// registry sends, no error handling. No Node program that verifies a signature from a registry
// starts and finishes faster; the gap between it and cosign is the runtime's, not Plinth's.
//   node bench/floor/verify.cjs bundle|legacy HOST/REPO@DIGEST KEY.pub   (exit 0 when verified)
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');

const [format, ref, keyFile] = process.argv.slice(2);
const slash = ref.indexOf('/');
const [hostname, port] = ref.slice(0, slash).split(':');
const [repo, digest] = ref.slice(slash + 1).split('@');
const agent = new http.Agent({ keepAlive: true });
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const get = (p, accept) =>
  new Promise((resolve, reject) => {
    http.get({ hostname, port, path: p, agent, headers: { accept } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
const sha256 = (b) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

async function main() {
  const key = crypto.createPublicKey(fs.readFileSync(keyFile));
  await get('/v2/', '*/*');
  const tag = digest.replace(':', '-');
  if (format === 'legacy') {
    const [, sig] = await Promise.all([get(`/v2/${repo}/manifests/${digest}`, MANIFEST), get(`/v2/${repo}/manifests/${tag}.sig`, MANIFEST)]);
    const layer = JSON.parse(sig.body).layers[0];
    const payload = (await get(`/v2/${repo}/blobs/${layer.digest}`, '*/*')).body;
    return sha256(payload) === layer.digest &&
      crypto.verify('sha256', payload, key, Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'], 'base64')) &&
      JSON.parse(payload).critical.image['docker-manifest-digest'] === digest;
  }
  // bundle: the referrers API (Debian's registry has none: 404) and the tag schema's index at once.
  const [, , index] = await Promise.all([get(`/v2/${repo}/manifests/${digest}`, MANIFEST), get(`/v2/${repo}/referrers/${digest}`, INDEX), get(`/v2/${repo}/manifests/${tag}`, INDEX)]);
  const entry = JSON.parse(index.body).manifests.find((m) => m.artifactType === 'application/vnd.dev.sigstore.bundle.v0.3+json');
  const layer = JSON.parse((await get(`/v2/${repo}/manifests/${entry.digest}`, MANIFEST)).body).layers[0];
  const blob = (await get(`/v2/${repo}/blobs/${layer.digest}`, '*/*')).body;
  const env = JSON.parse(blob).dsseEnvelope;
  const body = Buffer.from(env.payload, 'base64');
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${env.payloadType.length} ${env.payloadType} ${body.length} `), body]);
  return sha256(blob) === layer.digest &&
    crypto.verify('sha256', pae, key, Buffer.from(env.signatures[0].sig, 'base64')) &&
    JSON.parse(body).subject.some((s) => `sha256:${s.digest.sha256}` === digest);
}

main().then((ok) => {
  agent.destroy();
  process.stdout.write(ok ? 'verified\n' : 'not verified\n');
  process.exitCode = ok ? 0 : 1;
});
