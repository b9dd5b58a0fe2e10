/**
 * Benchmark: the admission webhook (`plinth serve`, warm decisions from its cache) against a bare
 * Node HTTPS server that answers a fixed AdmissionReview, both driven by wrk in the same run with
 * the same TLS certificate, connections and request. Prints requests/s, p50/p99 latency and the
 * throughput ratio (goal ≥ 0.8; p99 ≤ 5 ms warm). Needs wrk and docker-registry (setup.sh).
 *
 * With `--store sqlite` or `--store postgres` (or BENCH_STORE), the webhook records every admission
 * in a metadata store (a file, or a real PostgreSQL started on loopback from Debian's package) and
 * the run also reports how many records were written or dropped.
 *
 * Knobs: BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, BENCH_PIN=0 (no taskset), BENCH_PROF=DIR
 * (--cpu-prof of both servers), BENCH_NODE_FLAGS="--trace-deopt …" (both servers),
 * BENCH_SERVER_LOG=FILE (plinth's stdout), BENCH_DUMP=DIR (the request bodies).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

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

// With two or more cores, the load generator and the servers get a core each (taskset), so
// neither steals the other's and the rounds agree better. BENCH_PIN=0 turns this off.
const canPin = os.availableParallelism() >= 2 && process.env.BENCH_PIN !== '0' && existsSync('/usr/bin/taskset');
const pinLoad = canPin ? ['taskset', '-c', '0'] : [];
const pinServer = canPin ? ['taskset', '-c', '1'] : [];

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-webhook-'));
  const children: ChildProcess[] = [];
  const i = process.argv.indexOf('--store');
  const storeKind = i > 0 ? process.argv[i + 1] : process.env.BENCH_STORE;
  if (storeKind !== undefined && storeKind !== 'sqlite' && storeKind !== 'postgres') throw new Error(`--store must be sqlite or postgres, got ${storeKind}`);
  let pg: import('../test/helpers/postgres.js').Postgres | undefined;
  let storeTarget: string | undefined;
  if (storeKind === 'sqlite') storeTarget = path.join(work, 'store.db');
  if (storeKind === 'postgres') {
    pg = await (await import('../test/helpers/postgres.js')).startPostgres();
    storeTarget = await pg.createDatabase('bench');
  }
  // The database server shares the load generator's core: the webhook's core is its own, as when
  // the database runs on another machine. Backends forked later inherit the postmaster's affinity.
  const dbPid = pg?.pid();
  if (dbPid && canPin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(dbPid)], { stdio: 'ignore' });
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  try {
    const base = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }]] });
    const app = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }], [{ path: 'app', content: 'app' }]] });
    await copyImage(app.source, await openDestination(`${reg.host}/team/app:1`));
    const cat = emptyCatalog();
    cat.bases.push({ name: `${reg.host}/base/debian`, tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved' });
    await saveCatalog(path.join(work, 'catalog.yaml'), cat);
    let policy = (await import('node:fs')).readFileSync(path.join(root, 'examples/policies/approved-bases.yaml'), 'utf8');
    // BENCH_POLICY=signatures: the image is signed, and the policy also requires the signature.
    if (process.env.BENCH_POLICY === 'signatures') {
      const { generateKeyPair, openSigner } = await import('../src/sign/keys.js');
      const { signImage } = await import('../src/sign/index.js');
      const pair = await generateKeyPair('bench');
      await writeFile(path.join(work, 'bench.key'), pair.privateKeyPem);
      await writeFile(path.join(work, 'bench.pub'), pair.publicKeyPem);
      await signImage(`${reg.host}/team/app:1`, await openSigner(path.join(work, 'bench.key'), async () => 'bench'));
      policy = `${policy.trimEnd()}\n    - name: signed\n      mode: enforce\n      signatures:\n        keys: [bench.pub]\n`;
      console.log('policy: approved-bases + signatures (a bundle signature by a generated key)');
    }
    await writeFile(path.join(work, 'policy.yaml'), policy);
    const certs = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(work, 'certs'), ipAddresses: ['127.0.0.1'] });
    const image = `${reg.host}/team/app:1`;
    const scenarios = [
      { name: 'minimal Pod', review: minimalReview(image) },
      { name: 'controller-created Pod', review: controllerPodReview(image) },
    ].map((sc) => ({ ...sc, body: JSON.stringify(sc.review) }));
    const uid = scenarios[0]!.review.request.uid;
    // BENCH_DUMP=DIR writes the request bodies there (for profiling the handler alone).
    if (process.env.BENCH_DUMP) scenarios.forEach((sc, i) => writeFileSync(path.join(process.env.BENCH_DUMP!, `review-${i}.json`), sc.body));
    // The bare server: same TLS; reads and parses the body, answers a fixed allow.
    const barePort = await freePort();
    const bare = path.join(work, 'bare.cjs');
    await writeFile(bare, `const https=require('https'),fs=require('fs');const ans=JSON.stringify({apiVersion:'admission.k8s.io/v1',kind:'AdmissionReview',response:{uid:${JSON.stringify(uid)},allowed:true}});
https.createServer({cert:fs.readFileSync(${JSON.stringify(certs.files.cert)}),key:fs.readFileSync(${JSON.stringify(certs.files.key)})},(q,s)=>{if(q.method==='GET'){s.end('ok');return;}const c=[];q.on('data',d=>c.push(d));q.on('end',()=>{JSON.parse(Buffer.concat(c));s.writeHead(200,{'content-type':'application/json','content-length':Buffer.byteLength(ans)});s.end(ans);});}).listen(${barePort},'127.0.0.1');process.on('SIGTERM',()=>process.exit(0));`);
    const prof = [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : []), ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : [])];
    children.push(spawn(pinServer[0] ?? process.execPath, [...pinServer.slice(1), ...(pinServer.length ? [process.execPath] : []), ...prof, bare], { stdio: 'ignore' }));
    const plinthPort = await freePort();
    children.push(spawn(pinServer[0] ?? process.execPath, [...pinServer.slice(1), ...(pinServer.length ? [process.execPath] : []), ...prof, path.join(root, 'bin/plinth.cjs'), 'serve', '--policy', path.join(work, 'policy.yaml'), '--catalog', path.join(work, 'catalog.yaml'), '--tls-cert', certs.files.cert, '--tls-key', certs.files.key, '--port', String(plinthPort), '--host', '127.0.0.1', '--log-level', 'warn', '--allow-private-registry', '127.0.0.1', ...(storeTarget ? ['--store', storeTarget, '--cluster', 'bench'] : [])], { stdio: process.env.BENCH_SERVER_LOG ? ['ignore', (await import('node:fs')).openSync(process.env.BENCH_SERVER_LOG, 'w'), 'ignore'] : 'ignore' }));
    await waitUp(`https://127.0.0.1:${barePort}/healthz`, certs.caCert);
    await waitUp(`https://127.0.0.1:${plinthPort}/healthz`, certs.caCert);
    // CPU seconds a server process used (user + system, from /proc), to report CPU per request.
    const cpu = (pid: number | undefined): number => {
      try {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return (Number(f[11]) + Number(f[12])) / 100;
      } catch {
        return NaN;
      }
    };
    const [bareChild, plinthChild] = children;
    const curlArgs = ['-s', '--cacert', certs.files.caCert, '--resolve', `plinth.plinth-system.svc:${plinthPort}:127.0.0.1`];
    console.log(`wrk -t1 -c${connections} -d${seconds}s × ${rounds} alternating rounds (medians), HTTPS, warm decisions (cache hits)${canPin ? '; wrk on core 0, servers on core 1' : ''}${storeKind ? `; every admission recorded in ${storeKind} (${storeTarget!.replace(/\/\/[^@]*@/, '//')})` : ''}`);
    for (const sc of scenarios) {
      const lua = path.join(work, 'post.lua');
      await writeFile(lua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(sc.body)}\nwrk.headers["Content-Type"] = "application/json"\n`);
      // Warm up: the first request decides (registry, provenance); later ones hit the cache.
      const { stdout: first } = await execFileP('curl', [...curlArgs, '-H', 'content-type: application/json', '-d', sc.body, `https://plinth.plinth-system.svc:${plinthPort}/validate`]).catch(() => ({ stdout: '' }));
      if (!first.includes('"allowed":true')) throw new Error(`the webhook did not allow the benchmark image: ${first.slice(0, 300)}`);
      const run = async (port: number, pid: number | undefined) => {
        const before = cpu(pid);
        const r = parseWrk((await execFileP(pinLoad[0] ?? 'wrk', [...pinLoad.slice(1), ...(pinLoad.length ? ['wrk'] : []), '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', lua, `https://127.0.0.1:${port}/validate`])).stdout);
        const used = cpu(pid) - before;
        return { ...r, cpuUs: (used / (r.rps * seconds)) * 1e6, busy: used / seconds };
      };
      await run(plinthPort, plinthChild!.pid); // warm JIT
      await run(barePort, bareChild!.pid);
      // Alternate the two servers and take the median of each: the machine is shared and noisy.
      const ps: Array<Awaited<ReturnType<typeof run>>> = [];
      const bs: typeof ps = [];
      for (let i = 0; i < rounds; i++) {
        ps.push(await run(plinthPort, plinthChild!.pid));
        bs.push(await run(barePort, bareChild!.pid));
      }
      const median = (xs: typeof ps) => {
        const m = (f: (r: (typeof ps)[number]) => number) => xs.map(f).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
        return { rps: m((r) => r.rps), p50: m((r) => r.p50), p99: m((r) => r.p99), cpuUs: m((r) => r.cpuUs), busy: m((r) => r.busy) };
      };
      const p = median(ps);
      const b = median(bs);
      const ratios = ps.map((r, i) => r.rps / bs[i]!.rps);
      const line = (name: string, r: typeof p) =>
        `  ${name}${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   server CPU ${r.cpuUs.toFixed(0)} µs/request (${(r.busy * 100).toFixed(0)}% of a core)`;
      console.log(`${sc.name}: ${sc.body.length} bytes, one distinct image`);
      console.log(line('bare Node HTTPS server   ', b));
      console.log(line('plinth serve /validate   ', p));
      console.log(`  throughput ratio plinth/bare ${(p.rps / b.rps).toFixed(2)} (per round ${ratios.map((r) => r.toFixed(2)).join(', ')}; goal ≥ 0.8); p99 ${p.p99.toFixed(2)} ms (goal ≤ 5 ms)`);
    }
    const { stdout: scraped } = await execFileP('curl', [...curlArgs, `https://plinth.plinth-system.svc:${plinthPort}/metrics`]).catch(() => ({ stdout: '' }));
    const count = (re: RegExp) => Number(re.exec(scraped)?.[1] ?? NaN);
    if (storeKind) {
      // Give the recorder its last batch, then read what it did.
      await new Promise((r) => setTimeout(r, 1500));
      const { stdout: m2 } = await execFileP('curl', [...curlArgs, `https://plinth.plinth-system.svc:${plinthPort}/metrics`]).catch(() => ({ stdout: '' }));
      const c2 = (re: RegExp) => Number(re.exec(m2)?.[1] ?? NaN);
      console.log(`store (${storeKind}): ${c2(/plinth_store_admissions_total\{result="written"\} (\d+)/)} admissions written, ${c2(/plinth_store_admissions_total\{result="dropped_queue_full"\} (\d+)/)} dropped (queue full), ${c2(/plinth_store_admissions_total\{result="dropped_store_error"\} (\d+)/)} dropped (store error)`);
    }
    console.log(`decision cache: ${count(/plinth_cache_hits_total\{result="hit"\} (\d+)/)} hits, ${count(/plinth_cache_hits_total\{result="miss"\} (\d+)/)} misses, ${count(/plinth_cache_refreshes_total (\d+)/)} background refreshes (a tag's decision is refreshed before its 30 s TTL ends)`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await reg.stop();
    await pg?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** The smallest Pod a webhook can be asked about. */
function minimalReview(image: string) {
  return {
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
      name: 'web-0', namespace: 'prod', operation: 'CREATE', userInfo: { username: 'bench' },
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: 'prod' }, spec: { containers: [{ name: 'app', image }] } },
      oldObject: null, dryRun: false,
    },
  };
}

/**
 * A Pod as the API server sends it when the ReplicaSet controller creates one for a Deployment:
 * generateName, owner reference, managed fields, defaults filled in, the projected service-account
 * token volume and default tolerations added by admission plugins, an init container on the same
 * image.
 */
function controllerPodReview(image: string) {
  const container = (name: string, extra: Record<string, unknown>) => ({
    name, image, imagePullPolicy: 'IfNotPresent',
    resources: { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true, runAsNonRoot: true },
    terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File',
    volumeMounts: [{ name: 'kube-api-access-7x2lq', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
    ...extra,
  });
  const f = (...keys: string[]) => Object.fromEntries(keys.map((k) => [k, {}]));
  return {
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' }, requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'prod', operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: '9c5f3d1e-6a0b-4d8e-a3f2-0b6e1c7d2a41', groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object: {
        kind: 'Pod', apiVersion: 'v1',
        metadata: {
          generateName: 'web-7d9c8b6f5d-', namespace: 'prod', creationTimestamp: null,
          labels: { app: 'web', 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/part-of': 'shop', 'pod-template-hash': '7d9c8b6f5d' },
          annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-20T09:14:02Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9c8b6f5d', uid: '3f6b2a9e-1c4d-4e8f-9a0b-7c2d5e8f1a3b', controller: true, blockOwnerDeletion: true }],
          managedFields: [{
            manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', time: '2026-11-20T09:14:03Z', fieldsType: 'FieldsV1',
            fieldsV1: {
              'f:metadata': { 'f:annotations': f('.', 'f:kubectl.kubernetes.io/restartedAt', 'f:prometheus.io/port', 'f:prometheus.io/scrape'), 'f:generateName': {}, 'f:labels': f('.', 'f:app', 'f:app.kubernetes.io/name', 'f:app.kubernetes.io/part-of', 'f:pod-template-hash'), 'f:ownerReferences': f('.', 'k:{"uid":"3f6b2a9e-1c4d-4e8f-9a0b-7c2d5e8f1a3b"}') },
              'f:spec': {
                'f:containers': { 'k:{"name":"app"}': { '.': {}, ...f('f:env', 'f:image', 'f:imagePullPolicy', 'f:livenessProbe', 'f:name', 'f:ports', 'f:readinessProbe', 'f:resources', 'f:securityContext', 'f:terminationMessagePath', 'f:terminationMessagePolicy') } },
                'f:initContainers': { 'k:{"name":"migrate"}': { '.': {}, ...f('f:args', 'f:image', 'f:imagePullPolicy', 'f:name', 'f:resources', 'f:securityContext', 'f:terminationMessagePath', 'f:terminationMessagePolicy') } },
                ...f('f:dnsPolicy', 'f:enableServiceLinks', 'f:restartPolicy', 'f:schedulerName', 'f:securityContext', 'f:serviceAccount', 'f:serviceAccountName', 'f:terminationGracePeriodSeconds', 'f:topologySpreadConstraints'),
              },
            },
          }],
        },
        spec: {
          volumes: [{ name: 'kube-api-access-7x2lq', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }, { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } }], defaultMode: 420 } }],
          initContainers: [container('migrate', { args: ['migrate', '--wait'] })],
          containers: [container('app', {
            ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' }],
            env: [{ name: 'LOG_LEVEL', value: 'info' }, { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }, { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'web-db', key: 'url' } } }],
            livenessProbe: { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' }, initialDelaySeconds: 5, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
            readinessProbe: { httpGet: { path: '/readyz', port: 'http', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 5, successThreshold: 1, failureThreshold: 3 },
          })],
          restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst',
          serviceAccountName: 'web', serviceAccount: 'web', securityContext: { runAsUser: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
          schedulerName: 'default-scheduler', enableServiceLinks: true, preemptionPolicy: 'PreemptLowerPriority', priority: 0,
          tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { app: 'web' } } }],
        },
        status: {},
      },
      oldObject: null, dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
