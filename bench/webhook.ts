/**
 * Benchmark: the admission webhook (`plinth serve`, warm decisions from its cache) against a bare
 * Node HTTPS server that answers a fixed AdmissionReview, both driven by wrk in the same run with
 * the same TLS certificate, connections and request. Prints requests/s, p50/p99 latency and the
 * throughput ratio (goal ≥ 0.8; p99 ≤ 5 ms warm). Needs wrk and docker-registry (setup.sh).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalRegistry } from '../src/registry/local.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { emptyCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { chainIds } from '../src/provenance/chain.js';
import { createCertificates } from '../src/admission/certs.js';
import { freePort } from '../src/registry/local.js';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);

async function waitUp(url: string, ca: string): Promise<void> {
  const https = await import('node:https');
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const r = https.get(url, { ca, servername: 'plinth.plinth-system.svc' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      r.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come up`);
}

function parseWrk(out: string): { rps: number; p50: number; p99: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const ms = (label: string) => {
    const m = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  return { rps, p50: ms('50'), p99: ms('99') };
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-webhook-'));
  const children: ChildProcess[] = [];
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  try {
    const base = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }]] });
    const app = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }], [{ path: 'app', content: 'app' }]] });
    await copyImage(app.source, await openDestination(`${reg.host}/team/app:1`));
    const cat = emptyCatalog();
    cat.bases.push({ name: `${reg.host}/base/debian`, tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved' });
    await saveCatalog(path.join(work, 'catalog.yaml'), cat);
    await writeFile(path.join(work, 'policy.yaml'), (await import('node:fs')).readFileSync(path.join(root, 'examples/policies/approved-bases.yaml')));
    const certs = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(work, 'certs'), ipAddresses: ['127.0.0.1'] });
    const review = {
      apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
      request: {
        uid: '705ab4f5-6393-11e8-b7cc-42010a800002', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
        name: 'web-0', namespace: 'prod', operation: 'CREATE', userInfo: { username: 'bench' },
        object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: 'prod' }, spec: { containers: [{ name: 'app', image: `${reg.host}/team/app:1` }] } },
        oldObject: null, dryRun: false,
      },
    };
    const body = JSON.stringify(review);
    const lua = path.join(work, 'post.lua');
    await writeFile(lua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`);
    // The bare server: same TLS, answers the allow response a webhook would.
    const barePort = await freePort();
    const bare = path.join(work, 'bare.cjs');
    await writeFile(bare, `const https=require('https'),fs=require('fs');const ans=JSON.stringify({apiVersion:'admission.k8s.io/v1',kind:'AdmissionReview',response:{uid:${JSON.stringify(review.request.uid)},allowed:true}});
https.createServer({cert:fs.readFileSync(${JSON.stringify(certs.files.cert)}),key:fs.readFileSync(${JSON.stringify(certs.files.key)})},(q,s)=>{if(q.method==='GET'){s.end('ok');return;}const c=[];q.on('data',d=>c.push(d));q.on('end',()=>{JSON.parse(Buffer.concat(c));s.writeHead(200,{'content-type':'application/json','content-length':Buffer.byteLength(ans)});s.end(ans);});}).listen(${barePort},'127.0.0.1');`);
    children.push(spawn(process.execPath, [bare], { stdio: 'ignore' }));
    const plinthPort = await freePort();
    children.push(spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : []), path.join(root, 'bin/plinth.cjs'), 'serve', '--policy', path.join(work, 'policy.yaml'), '--catalog', path.join(work, 'catalog.yaml'), '--tls-cert', certs.files.cert, '--tls-key', certs.files.key, '--port', String(plinthPort), '--host', '127.0.0.1', '--log-level', 'warn'], { stdio: 'ignore' }));
    await waitUp(`https://127.0.0.1:${barePort}/healthz`, certs.caCert);
    await waitUp(`https://127.0.0.1:${plinthPort}/healthz`, certs.caCert);
    // Warm up: the first request decides (registry, provenance); later ones hit the cache.
    const { stdout: first } = await execFileP('curl', ['-s', '--cacert', certs.files.caCert, '--resolve', `plinth.plinth-system.svc:${plinthPort}:127.0.0.1`, '-H', 'content-type: application/json', '-d', body, `https://plinth.plinth-system.svc:${plinthPort}/validate`]).catch(() => ({ stdout: '' }));
    if (first && !first.includes('"allowed":true')) throw new Error(`the webhook did not allow the benchmark image: ${first.slice(0, 300)}`);
    const run = async (port: number) => parseWrk((await execFileP('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', lua, `https://127.0.0.1:${port}/validate`])).stdout);
    await run(plinthPort); // warm JIT
    const p = await run(plinthPort);
    const b = await run(barePort);
    console.log(`wrk -t1 -c${connections} -d${seconds}s, HTTPS, one Pod with one image, warm decisions (cache hits)`);
    console.log(`bare Node HTTPS server   ${b.rps.toFixed(0).padStart(7)} req/s   p50 ${b.p50.toFixed(2)} ms   p99 ${b.p99.toFixed(2)} ms`);
    console.log(`plinth serve /validate   ${p.rps.toFixed(0).padStart(7)} req/s   p50 ${p.p50.toFixed(2)} ms   p99 ${p.p99.toFixed(2)} ms`);
    console.log(`throughput ratio plinth/bare ${(p.rps / b.rps).toFixed(2)} (goal ≥ 0.8); p99 ${p.p99.toFixed(2)} ms (goal ≤ 5 ms)`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
