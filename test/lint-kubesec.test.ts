import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { plinthCommand, runPlinth } from './helpers/common.js';
import { KINDS, generateManifest } from './helpers/manifests.js';
import { peer } from './helpers/peers.js';
import { tempDir, type TempDir } from './helpers/util.js';
import { kubesecRules } from '../src/lint/kubesec.js';

/**
 * The real kubesec (v2.14.2, built by scripts/peers.sh) is the oracle: a generated corpus of
 * manifests that varies every rule goes through `kubesec scan` and `plinth lint --format kubesec
 * --kubesec-rules 2.14`; the reports must be identical (objects, scores, messages, the critical /
 * passed / advise lists with their order). kubesec validates against Kubernetes JSON schemas it
 * fetches online; offline it is given permissive local schemas (kubeconform's file layout) so only
 * the rules differ.
 */
const run = promisify(execFile);

const N = 120;

describe('plinth lint --format kubesec against the real kubesec', () => {
  let dir: TempDir;
  let kubesec: string;
  before(async () => {
    kubesec = peer('kubesec');
    dir = await tempDir('plinth-kubesec');
    await mkdir(path.join(dir.path, 'schemas'));
    for (const k of KINDS) await writeFile(path.join(dir.path, 'schemas', `${k.schema}.json`), '{"type": "object"}');
  });
  after(async () => dir?.remove());

  const kubesecScan = async (file: string): Promise<unknown> => {
    // kubesec exits 2 when any score is 0 or below: the report is on stdout either way.
    const r = await run(kubesec, ['scan', '--schema-location', `${dir.path}/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json`, file], { cwd: dir.path, maxBuffer: 64 << 20 }).catch((e: { stdout?: string; code?: number; stderr?: string }) => {
      if (e.code === 2 && e.stdout) return { stdout: e.stdout, stderr: e.stderr ?? '' };
      throw e;
    });
    return JSON.parse(r.stdout);
  };

  test(`a corpus of ${N} generated manifests: identical reports`, async () => {
    assert.ok(existsSync(kubesec));
    const docs = Array.from({ length: N }, (_, i) => generateManifest(i));
    await writeFile(path.join(dir.path, 'corpus.yaml'), docs.map((d) => stringify(d)).join('---\n'));
    const theirs = (await kubesecScan('corpus.yaml')) as Array<{ object: string; score: number; scoring: Record<string, Array<{ id: string }>> }>;
    const ours = await runInDir(dir.path, ['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', 'corpus.yaml']);
    assert.equal(theirs.length, N);
    assert.equal(ours.length, N);
    for (let i = 0; i < N; i++) assert.deepEqual(ours[i], theirs[i], `document ${i} (${JSON.stringify(docs[i]).slice(0, 300)})`);
    // The corpus varies every rule: each rule of kubesec v2.14.2 both matched and not.
    const matched = new Set<string>();
    const unmatched = new Set<string>();
    for (const rep of theirs) {
      for (const x of [...(rep.scoring['critical'] ?? []), ...(rep.scoring['passed'] ?? [])]) matched.add(x.id);
      for (const x of rep.scoring['advise'] ?? []) unmatched.add(x.id);
    }
    for (const rule of kubesecRules('2.14')) {
      assert.ok(matched.has(rule.id), `no manifest matches ${rule.id}`);
      if (rule.points > 0) assert.ok(unmatched.has(rule.id), `every manifest matches ${rule.id}`);
    }
    // Scores of every sign, and kinds kubesec does not score.
    assert.ok(theirs.some((x) => x.score < 0) && theirs.some((x) => x.score > 0));
    assert.ok(theirs.some((x) => Object.keys(x.scoring).length === 0));
  });

  test("kubesec's documented examples: the quick-start pod (+1) and a SYS_ADMIN pod (-30)", async () => {
    const demo = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'kubesec-demo' }, spec: { containers: [{ name: 'kubesec-demo', image: 'gcr.io/google-samples/node-hello:1.0', securityContext: { readOnlyRootFilesystem: true } }] } };
    const sysAdmin = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'security-context-demo' }, spec: { containers: [{ name: 'sec-ctx-demo', image: 'busybox:1.36', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] } };
    await writeFile(path.join(dir.path, 'docs.yaml'), `${stringify(demo)}---\n${stringify(sysAdmin)}`);
    const theirs = (await kubesecScan('docs.yaml')) as Array<{ object: string; score: number; message: string; scoring: { critical?: Array<{ id: string }> } }>;
    const ours = (await runInDir(dir.path, ['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', 'docs.yaml'])) as typeof theirs;
    assert.deepEqual(ours, theirs);
    assert.deepEqual(ours.map((r) => [r.object, r.score, r.message]), [['Pod/kubesec-demo.default', 1, 'Passed with a score of 1 points'], ['Pod/security-context-demo.default', -30, 'Failed with a score of -30 points']]);
    assert.deepEqual(ours[1]!.scoring.critical!.map((x) => x.id), ['CapSysAdmin']);
  });

  test('one manifest per file, JSON input, and a manifest from standard input', async () => {
    for (let i = 0; i < 12; i++) {
      const doc = generateManifest(1000 + i, 7);
      const name = `one-${i}.${i % 3 === 0 ? 'json' : 'yaml'}`;
      await writeFile(path.join(dir.path, name), i % 3 === 0 ? JSON.stringify(doc) : stringify(doc));
      const theirs = await kubesecScan(name);
      const ours = await runInDir(dir.path, ['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', name]);
      assert.deepEqual(ours, theirs, name);
    }
    const docs = [generateManifest(2000, 9), generateManifest(2001, 9), generateManifest(2002, 9)];
    const input = docs.map((d) => stringify(d)).join('---\n');
    const k = spawnSync(kubesec, ['scan', '--schema-location', `${dir.path}/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json`, '-'], { input, encoding: 'utf8' });
    const p = await runPlinth(['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', '-'], { input });
    assert.ok(p.code === 0 || p.code === 1, p.stderr);
    assert.deepEqual(JSON.parse(p.stdout), JSON.parse(k.stdout));
    assert.equal((JSON.parse(p.stdout) as Array<{ fileName: string }>)[0]!.fileName, 'STDIN');
  });
});

async function runInDir(cwd: string, args: string[]): Promise<unknown[]> {
  const c = plinthCommand(args);
  const r = await run(c.file, c.args, { cwd, env: c.env, maxBuffer: 64 << 20 }).catch((e: { stdout?: string; code?: number; stderr?: string }) => {
    if ((e.code === 1 || e.code === 0) && e.stdout) return { stdout: e.stdout, stderr: e.stderr ?? '' };
    throw new Error(`plinth ${args.join(' ')} failed (${e.code}): ${e.stderr}`);
  });
  return JSON.parse(r.stdout) as unknown[];
}
