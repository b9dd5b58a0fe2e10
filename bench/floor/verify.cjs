'use strict';
// The Node floor of `plinth verify --key` (bench/verify.ts runs it beside plinth and cosign): a
// plain Node script that makes the requests a verification needs, on the best schedule, and checks
// the signature with node:crypto, and nothing else: no CLI, no bundle, no validation of what the
// registry sends, no error handling. No Node program that verifies a signature from a registry
// starts and finishes faster; the gap between it and cosign is the runtime's, not Plinth's.
// With --raw it does not even load node:http: each request is written on a plain TCP socket and
// the answer cut at its Content-Length (enough for Debian's registry on loopback, nothing more).
//   node bench/floor/verify.cjs [--raw] bundle|legacy HOST/REPO@DIGEST KEY.pub   (exit 0 when verified)
const crypto = require('node:crypto');
const fs = require('node:fs');

const raw = process.argv[2] === '--raw';
const [format, ref, keyFile] = process.argv.slice(raw ? 3 : 2);
const slash = ref.indexOf('/');
const [hostname, port] = ref.slice(0, slash).split(':');
const [repo, digest] = ref.slice(slash + 1).split('@');
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const sockets = [];
let get;
if (raw) {
  // One request at a time per socket, a new socket when all are busy.
  const net = require('node:net');
  const idle = [];
  const open = () => {
    const s = net.connect({ host: hostname, port: Number(port) });
    sockets.push(s);
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const n = Number((/\r\ncontent-length: *(\d+)/i.exec(head) ?? [0, 0])[1]);
      if (buf.length < end + 4 + n) return;
      const done = s.waiter;
      s.waiter = undefined;
      const body = buf.subarray(end + 4, end + 4 + n);
      buf = buf.subarray(end + 4 + n);
      idle.push(s);
      done({ status: Number(head.slice(9, 12)), body });
    });
    return s;
  };
  get = (p, accept) =>
    new Promise((resolve) => {
      const s = idle.pop() ?? open();
      s.waiter = resolve;
      s.write(`GET ${p} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: ${accept}\r\n\r\n`);
    });
} else {
  const http = require('node:http');
  const agent = new http.Agent({ keepAlive: true });
  sockets.push(agent);
  get = (p, accept) =>
    new Promise((resolve, reject) => {
      http.get({ hostname, port, path: p, agent, headers: { accept } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
}
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
  for (const s of sockets) s.destroy();
  process.stdout.write(ok ? 'verified\n' : 'not verified\n');
  process.exitCode = ok ? 0 : 1;
});
