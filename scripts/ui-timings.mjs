// Page-load times of `plinth ui` on a store of N images (default 10000, bulk records written through MetaStore):
// `node scripts/ui-timings.mjs [N]` after the build. A measurement, not a benchmark: there is no peer to compare with.
import { MetaStore } from '../dist/src/store/store.js';
import { startUi } from '../dist/src/ui/server.js';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os'; import path from 'node:path';
const N = Number(process.argv[2] ?? 10000);
const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ui-bench-')), 'store.db');
const m = await MetaStore.open(file);
let t = Date.now();
const sev = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
for (let i = 0; i < N; i++) {
  const digest = `sha256:${createHash('sha256').update(`b-${i}`).digest('hex')}`;
  await m.recordImage({ image: { repository: `reg.example/team${i % 50}/app-${i}`, registry: 'reg.example', tag: 'v1', digest }, source: 'bench', os: 'debian 12', size: 1e6 + i, labels: { 'org.opencontainers.image.authors': `team${i % 50}@example.com` },
    base: { name: 'reg.example/base/debian', tag: '12', digest: `sha256:${'a'.repeat(63)}${i % 3}`, confidence: 'high', status: i % 3 ? 'approved' : 'superseded', line: 'debian-12', newest: 'x', behind: i % 3 === 0 },
    vulns: { total: 3, bySeverity: { [sev[i % 4]]: 3 }, base: 2, image: 1, fixable: 1 }, scanned: true,
    occurrences: [{ kind: 'VULNERABILITY', note: 'CVE-2024-0001', key: 'libc6', subject: 'CVE-2024-0001', severity: sev[i % 4], data: {}, extra: { package: 'libc6', origin: 'base', fixedVersion: '2.36' } }] });
}
console.log(`filled ${N} images in ${Date.now() - t} ms`);
const ui = await startUi(m, {});
const pages = ['/', '/images', '/images?sort=vulnerabilities&dir=desc&page=50', '/images?cve=CVE-2024-0001&size=500', '/images?namespace=shop', `/images/reg.example/team7/app-7@sha256:${createHash('sha256').update('b-7').digest('hex')}`, '/vulnerabilities/CVE-2024-0001', '/bases', `/bases/reg.example/base/debian@sha256:${'a'.repeat(63)}1`, '/decisions'];
for (const p of pages) {
  const times = [];
  let status, bytes;
  for (let k = 0; k < 5; k++) { const s = performance.now(); const r = await fetch(ui.url + p); const b = await r.text(); times.push(performance.now() - s); status = r.status; bytes = b.length; }
  times.sort((a, b) => a - b);
  console.log(`${p.slice(0, 70).padEnd(72)} ${status} ${String(bytes).padStart(8)} B  median ${times[2].toFixed(0)} ms  max ${times[4].toFixed(0)} ms`);
}
await ui.close(); await m.close();
rmSync(path.dirname(file), { recursive: true, force: true });
