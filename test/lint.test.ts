import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { stringify } from 'yaml';
import AjvDraft04 from 'ajv-draft-04';
import { mulberry32, runPlinth, sharedDir } from './helpers/common.js';
import { tempDir, type TempDir } from './helpers/util.js';
import { startFaultProxy, startRegistry, type TestRegistry } from './helpers/registry.js';
import { buildImage, buildIndex } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { lintDockerfile } from '../src/lint/dockerfile.js';
import { lintManifests } from '../src/lint/manifests.js';
import { kubesecRules, kubesecScore } from '../src/lint/kubesec.js';
import { DOCKERFILE_RULES } from '../src/lint/rules.js';
import { lintText } from '../src/lint/index.js';
import { fixDockerfile, unifiedDiff } from '../src/lint/fix.js';
import { evaluateWorkload } from '../src/lint/workload.js';
import { parsePolicy } from '../src/policy/load.js';
import { emptyCatalog, saveCatalog, type Catalog } from '../src/provenance/catalog.js';
import { parseShell } from '../src/lint/shell.js';

const D = (s: string) => `sha256:${s.repeat(64).slice(0, 64)}`;

function ids(text: string, o: Parameters<typeof lintDockerfile>[1] = { file: 'Dockerfile' }): string[] {
  return lintDockerfile(text, o).findings.map((f) => f.rule);
}

/** Each rule both ways: the first text must report it, the second must not. */
const CASES: Array<[string, string, string]> = [
  ['DL3000', 'FROM debian:12\nWORKDIR app\n', 'FROM debian:12\nWORKDIR /app\nWORKDIR $HOME/x\n'],
  ['DL3002', 'FROM debian:12\nUSER app\nUSER root\n', 'FROM debian:12\nUSER root\nRUN x\nUSER 1000\n'],
  ['DL3004', 'FROM debian:12\nRUN sudo apt-get update\n', 'FROM debian:12\nRUN echo sudo\n'],
  ['DL3006', 'FROM debian\n', 'FROM debian:12\nFROM scratch\nFROM debian:12 AS build\nFROM build\nFROM debian@' + D('a') + '\n'],
  ['DL3007', 'FROM debian:latest\n', 'FROM debian:latest@' + D('b') + '\nFROM debian:12\n'],
  ['DL3008', 'FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n', 'FROM debian:12\nRUN apt-get install -y curl=7.88 ./local.deb -t bookworm-backports git=1:2.39\n'],
  ['DL3018', 'FROM alpine:3.20\nRUN apk add --no-cache curl\n', 'FROM alpine:3.20\nRUN apk add --no-cache --virtual .deps curl=8.9.0-r0\n'],
  ['DL3020', 'FROM debian:12\nADD src /src\n', 'FROM debian:12\nADD app.tar.gz /\nCOPY src /src\n'],
  ['DL3029', 'FROM --platform=linux/amd64 debian:12\n', 'FROM debian:12\n'],
  ['DL3061', 'RUN echo hi\nFROM debian:12\n', '# syntax=docker/dockerfile:1\nARG V=12\nFROM debian:${V}\n'],
  ['DL4006', 'FROM debian:12\nRUN cat /etc/os-release | grep ID\n', 'FROM debian:12\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN cat /etc/os-release | grep ID\nRUN a || b\n'],
  ['PL003', 'FROM debian:12\n', `FROM debian:12@${D('c')}\nFROM scratch\n`],
  ['PL004', 'FROM debian:12\nRUN curl -fsSL https://get.example.com | sh\n', 'FROM debian:12\nRUN curl -fsSLo /tmp/i.sh https://get.example.com && sha256sum -c sums && sh /tmp/i.sh\n'],
  ['PL004', 'FROM debian:12\nRUN sh -c "$(wget -qO- https://x.example/install)"\n', 'FROM debian:12\nRUN wget -q https://x.example/a.tgz | tar xz\n'],
  ['PL005', 'FROM debian:12\nADD https://example.com/tool.tgz /opt/\n', `FROM debian:12\nADD --checksum=${D('d')} https://example.com/tool.tgz /opt/\n`],
  ['PL006', 'FROM debian:12\nENV DB_PASSWORD=hunter2\n', 'FROM debian:12\nENV PATH=/opt/bin:$PATH TZ=UTC\nARG VERSION=1\n'],
  ['PL006', 'FROM debian:12\nARG GITHUB_TOKEN\n', 'FROM debian:12\nARG TOKENIZER_MODEL=base\n'.replace('TOKENIZER_MODEL', 'MODEL')],
  ['PL007', 'FROM debian:12 AS b\nUSER app\nFROM debian:12\nRUN x\n', 'FROM debian:12\nUSER app\n'],
  ['PL009', 'FROM debian:12\nFOO bar\n', 'FROM debian:12\nHEALTHCHECK NONE\n'],
];

describe('plinth lint: Dockerfile rules', () => {
  for (const [rule, bad, good] of CASES) {
    test(`${rule} both ways (${bad.split('\n')[1] ?? bad.split('\n')[0]})`, () => {
      assert.ok(ids(bad).includes(rule), `${rule} expected in ${JSON.stringify(ids(bad))}`);
      assert.ok(!ids(good).includes(rule), `${rule} not expected in ${JSON.stringify(ids(good))}`);
    });
  }

  test('severities and messages are hadolint\'s; positions are file:line:column', () => {
    const r = lintDockerfile('FROM debian:12\n\nWORKDIR app\nRUN   sudo x\nFROM   debian:latest\n', { file: 'x/Dockerfile' });
    const f = (id: string) => r.findings.find((x) => x.rule === id)!;
    assert.deepEqual([f('DL3000').severity, f('DL3000').message, f('DL3000').line, f('DL3000').column], ['error', 'Use absolute WORKDIR', 3, 1]);
    assert.equal(lintDockerfile('FROM a:1\nUSER root\n', { file: 'D' }).findings.find((x) => x.rule === 'DL3002')!.message, 'Last USER should not be root.');
    assert.equal(f('DL3004').severity, 'error');
    assert.equal(f('DL3007').severity, 'warning');
    assert.match(f('DL3007').message, /^Using latest is prone to errors/);
    assert.deepEqual([f('DL3007').line, f('DL3007').column, f('DL3007').endColumn], [5, 8, 21]);
    assert.equal(f('DL3000').file, 'x/Dockerfile');
  });

  test('DL3002 in every stage; DL4006 state resets at FROM', () => {
    const r = lintDockerfile('FROM a:1 AS x\nUSER root\nFROM b:1\nUSER 0:0\n', { file: 'D' });
    assert.deepEqual(r.findings.filter((x) => x.rule === 'DL3002').map((x) => x.line), [2, 4]);
    const p = ids('FROM a:1\nSHELL ["/bin/bash","-o","pipefail","-c"]\nRUN a | b\nFROM b:1\nRUN c | d\n');
    assert.equal(p.filter((x) => x === 'DL4006').length, 1);
    assert.ok(!ids('FROM a:1\nSHELL ["pwsh","-c"]\nRUN a | b\n').includes('DL4006'));
  });

  test('multi-stage: a FROM naming a stage is not an image; ARG defaults and --build-arg in FROM', () => {
    assert.deepEqual(ids('FROM golang:1.22 AS Build\nRUN go build\nFROM build\nUSER app\n').filter((x) => x.startsWith('DL')), []);
    const argText = 'ARG BASE=debian:latest\nARG TAG\nFROM ${BASE}\nFROM alpine:${TAG:-3.20}\nFROM redis:${TAG}\nUSER a\n';
    const r = ids(argText);
    assert.ok(r.includes('DL3007'), 'ARG default substituted');
    assert.equal(lintDockerfile(argText, { file: 'D' }).findings.filter((x) => x.rule === 'PL003').length, 2, 'the unset ${TAG} image is not judged');
    assert.ok(!ids(argText, { file: 'D', buildArgs: { BASE: 'debian:12' } }).includes('DL3007'), '--build-arg overrides the default');
  });

  test('heredocs, continuations with comment lines, and the escape directive', () => {
    assert.ok(ids('FROM a:1\nRUN <<EOF\nset -e\ncurl -s https://x.example | bash\nEOF\nUSER a\n').includes('PL004'));
    assert.ok(ids('FROM a:1\nRUN apt-get update && \\\n  # the packages\n  apt-get install -y \\\n  curl\n').includes('DL3008'));
    const esc = '# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN apt-get install `\n    curl\nWORKDIR C:\\app\nUSER a\n';
    const r = ids(esc);
    assert.ok(r.includes('DL3008'), JSON.stringify(r));
    assert.ok(!r.includes('DL3000'), 'a Windows absolute path');
  });

  test('pragmas: # hadolint ignore= above an instruction, # hadolint global ignore=', () => {
    const text = 'FROM debian\n# hadolint ignore=DL3008,DL4006\nRUN apt-get install -y curl | tee x\nRUN apt-get install -y git\n';
    const r = lintDockerfile(text, { file: 'D' });
    assert.deepEqual(r.findings.filter((x) => x.rule === 'DL3008').map((x) => x.line), [4]);
    assert.ok(!r.findings.some((x) => x.rule === 'DL4006'));
    assert.equal(r.ignored, 2);
    const g = lintDockerfile(`# hadolint global ignore=DL3006,PL007\n${text}`, { file: 'D' });
    assert.ok(!g.findings.some((x) => x.rule === 'DL3006' || x.rule === 'PL007'));
    // A pragma with something else in between does not apply.
    assert.ok(ids('FROM a:1\n# hadolint ignore=DL3000\nUSER x\nWORKDIR rel\n').includes('DL3000'));
  });

  test('DL3026: trusted registries (hadolint globs; unqualified = docker.io), policy allowedRegistries, COPY --from and RUN --mount', () => {
    const text = 'FROM debian:12\nFROM ghcr.io/acme/base:1\nFROM registry.example.com/x/y:1 AS b\nCOPY --from=quay.io/x/tool:1 /t /t\nCOPY --from=b /a /a\nRUN --mount=type=bind,from=gcr.io/x/y:1,target=/m true\nUSER a\n';
    const lines = (o: Parameters<typeof lintDockerfile>[1]) => lintDockerfile(text, o).findings.filter((x) => x.rule === 'DL3026').map((x) => x.line);
    assert.deepEqual(lines({ file: 'D' }), [], 'no list: no-op');
    assert.deepEqual(lines({ file: 'D', trustedRegistries: ['ghcr.io'] }), [1, 3, 4, 6]);
    assert.deepEqual(lines({ file: 'D', trustedRegistries: ['docker.io', '*.example.com', 'ghcr.io'] }), [4, 6]);
    const policy = parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: regs\n    mode: warn\n    allowedRegistries: {registries: [ghcr.io/acme/**, quay.io]}\n').policy;
    const pf = lintDockerfile(text, { file: 'D', policy }).findings.filter((x) => x.rule === 'DL3026');
    assert.deepEqual(pf.map((x) => [x.line, x.severity]), [[1, 'warning'], [3, 'warning'], [6, 'warning']]);
    assert.match(pf[0]!.message, /docker\.io|debian/);
  });

  test('policy imageReferences: requireDigest makes PL003 an error, forbidLatest makes DL3007 one', () => {
    const policy = parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: refs\n    mode: enforce\n    imageReferences: {requireDigest: true, forbidLatest: true}\n').policy;
    const r = lintDockerfile('FROM debian:latest\nFROM alpine\nUSER a\n', { file: 'D', policy }).findings;
    assert.equal(r.find((x) => x.rule === 'PL003')!.severity, 'error');
    assert.deepEqual(r.filter((x) => x.rule === 'DL3007').map((x) => x.severity), ['error', 'error']);
  });

  test('catalog: PL001 not approved, PL002 deprecated/superseded naming the successor, PL008 distroless variant', () => {
    const base = { diffIds: [D('1')], platform: 'linux/amd64' };
    const catalog: Catalog = {
      ...emptyCatalog(),
      bases: [
        { ...base, name: 'docker.io/library/debian', tag: '12', digest: D('2'), status: 'approved', line: 'debian' },
        { ...base, name: 'docker.io/library/debian', tag: '11', digest: D('3'), status: 'deprecated', line: 'debian', reason: 'end of life', successor: 'debian:12' },
        { ...base, name: 'docker.io/library/debian', tag: '12.1', digest: D('4'), status: 'superseded', line: 'debian' },
        { ...base, name: 'gcr.io/distroless/base-debian12', tag: 'latest', digest: D('5'), status: 'approved', line: 'debian-distroless' },
      ],
    };
    const f = (text: string) => lintDockerfile(text, { file: 'D', catalog }).findings;
    assert.ok(f('FROM redis:7\nUSER a\n').some((x) => x.rule === 'PL001'));
    assert.ok(!f('FROM debian:12\nUSER a\n').some((x) => x.rule === 'PL001' || x.rule === 'PL002'));
    const dep = f('FROM debian:11\nUSER a\n').find((x) => x.rule === 'PL002')!;
    assert.equal(dep.severity, 'error');
    assert.match(dep.message, /deprecated.*end of life.*use debian:12/);
    assert.match(f('FROM debian:12.1\nUSER a\n').find((x) => x.rule === 'PL002')!.message, /superseded in the catalog; use docker\.io\/library\/debian:12@/);
    assert.ok(f('FROM debian:12\nRUN apt-get install -y curl=1\nUSER a\n').some((x) => x.rule === 'PL008'));
    assert.ok(!f('FROM debian:12 AS build\nRUN apt-get install -y curl=1\nFROM debian:12\nCOPY --from=build /x /x\nUSER a\n').some((x) => x.rule === 'PL008'), 'no RUN in the final stage');
    assert.ok(!f('FROM redis:7\nRUN x\nUSER a\n').some((x) => x.rule === 'PL008'), 'no distroless variant');
    assert.ok(!lintDockerfile('FROM redis:7\n', { file: 'D', catalog: emptyCatalog() }).findings.some((x) => x.rule === 'PL001'), 'an empty catalog judges nothing');
  });

  test('the shell reader: quotes, substitutions, pipes', () => {
    const s = parseShell(`echo "a | b" 'c|d' && X=1 curl -s "$(echo u)" | sudo -E bash -s -- x; y || z`);
    assert.equal(s.hasPipes, true);
    assert.deepEqual(s.commands.map((c) => c.words[0]), ['echo', 'curl', 'sudo', 'y', 'z']);
    assert.equal(parseShell('echo "a | b"').hasPipes, false);
    assert.equal(parseShell('a || b').hasPipes, false);
  });
});

const POD = (spec: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', ...extra }, spec: { containers: [{ name: 'c', image: 'nginx:1' }], ...spec } });

describe('plinth lint: the rule tables match the shared vectors', () => {
  test('kubesec-rules.txt: every rule with its points, kinds, selector and reason', async () => {
    const lines = (await readFile(sharedDir('vectors', 'lint', 'kubesec-rules.txt'), 'utf8')).split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    const rows = lines.map((l) => l.split('\t'));
    const rules = kubesecRules('latest');
    assert.equal(rows.length, 30);
    assert.deepEqual(rules.map((r) => r.id).sort(), rows.map((r) => r[0]).sort());
    for (const [id, points, advise, kinds, selector, reason] of rows) {
      const r = rules.find((x) => x.id === id)!;
      assert.deepEqual([r.points, r.advise ?? '', [...r.kinds].join(', '), r.selector, r.reason], [Number(points), advise ? Number(advise) : '', kinds, selector, reason], id);
    }
  });

  test('hadolint-base-image-rules.txt: the IDs Plinth implements have hadolint\'s severity and message', async () => {
    const rows = (await readFile(sharedDir('vectors', 'lint', 'hadolint-base-image-rules.txt'), 'utf8')).split('\n').filter((l) => /^DL\d{4}\t/.test(l)).map((l) => l.split('\t'));
    let compared = 0;
    for (const [id, severity, message] of rows) {
      const r = DOCKERFILE_RULES.find((x) => x.id === id);
      if (!r) continue;
      compared++;
      assert.equal(r.severity, severity!.toLowerCase(), id);
      // The vectors are hadolint's README table; the messages are its source's (DL3002 writes USER in capitals).
      assert.equal(r.description.replace(/\.$/, '').toLowerCase(), message!.replace(/\.$/, '').toLowerCase(), id);
    }
    assert.ok(compared >= 6, `${compared} rules compared`);
  });
});

describe('plinth lint: kubesec rules (latest rule set)', () => {
  const score = (obj: unknown) => kubesecScore(obj, 'f.yaml', 'latest').report;
  const matched = (obj: unknown) => {
    const r = score(obj);
    return [...(r.scoring.critical ?? []), ...(r.scoring.passed ?? [])].map((x) => x.id);
  };

  test('seccomp and AppArmor profiles: pod level inherited, container level takes precedence', () => {
    assert.ok(matched(POD({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } } })).includes('SeccompAny'));
    const over = POD({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } }, containers: [{ name: 'c', image: 'x:1', securityContext: { seccompProfile: { type: 'Unconfined' } } }] });
    assert.ok(matched(over).includes('SeccompUnconfined'));
    assert.ok(!matched(over).includes('SeccompAny'));
    assert.ok(matched(POD({ containers: [{ name: 'c', image: 'x:1', securityContext: { appArmorProfile: { type: 'Unconfined' } } }] })).includes('ApparmorUnconfined'));
    assert.ok(matched(POD({ securityContext: { appArmorProfile: { type: 'Localhost' } } })).includes('ApparmorAny'));
    // The legacy annotations count only in the 2.14 rule set.
    const ann = POD({}, { annotations: { 'container.seccomp.security.alpha.kubernetes.io/pod': 'runtime/default' } });
    assert.ok(!matched(ann).includes('SeccompAny'));
    assert.ok((kubesecScore(ann, 'f', '2.14').report.scoring.passed ?? []).some((x) => x.id === 'SeccompAny'));
  });

  test('ephemeral and init containers count; CronJob pod specs; secrets in env; anonymous bindings; hostUsers', () => {
    assert.ok(matched(POD({ ephemeralContainers: [{ name: 'd', image: 'x:1', securityContext: { privileged: true } }] })).includes('Privileged'));
    assert.ok(!kubesecScore(POD({ ephemeralContainers: [{ name: 'd', image: 'x:1', securityContext: { privileged: true } }] }), 'f', '2.14').report.scoring.critical);
    assert.ok(matched(POD({ initContainers: [{ name: 'i', image: 'x:1', securityContext: { allowPrivilegeEscalation: true } }] })).includes('AllowPrivilegeEscalation'));
    const cron = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'x:1', envFrom: [{ secretRef: { name: 's' } }] }] } } } } } };
    const cr = score(cron);
    assert.deepEqual([cr.score, cr.scoring.critical?.map((x) => x.id), cr.message], [-5, ['SecretsAsEnvironmentVariables'], 'Failed with a score of -5 points']);
    const rb = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'b' }, subjects: [{ kind: 'User', name: 'system:anonymous' }] };
    assert.equal(score(rb).score, -30);
    assert.equal(score({ ...rb, subjects: [{ kind: 'User', name: 'alice' }] }).message, 'Passed with a score of 0 points');
    assert.ok(matched(POD({ hostUsers: false })).includes('HostUsers'));
    assert.ok(!matched(POD({ hostUsers: true })).includes('HostUsers'));
  });

  test('scoring: the three messages, the sum of points, kubesec\'s sort order', () => {
    const r = score(POD({ hostNetwork: true, hostPID: true, serviceAccountName: 'sa', containers: [{ name: 'c', image: 'x:1', securityContext: { privileged: true, readOnlyRootFilesystem: true } }] }));
    assert.equal(r.score, -9 - 9 - 30 + 3 + 1);
    assert.equal(r.message, `Failed with a score of ${r.score} points`);
    assert.deepEqual(r.scoring.critical!.map((x) => x.id), ['Privileged', 'HostNetwork', 'HostPID']);
    assert.deepEqual(r.scoring.passed!.map((x) => x.id), ['ServiceAccountName', 'ReadOnlyRootFilesystem']);
    const adv = r.scoring.advise!.map((x) => x.points);
    assert.deepEqual(adv, [...adv].sort((a, b) => b - a));
    assert.equal(score({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }).message, 'This resource kind is not supported by kubesec');
    assert.equal(score({ kind: 'Pod' }).object, 'Pod/undefined.default');
  });

  test('workloadSecurity: minScore and forbid', () => {
    const bad = POD({ hostNetwork: true });
    assert.equal(evaluateWorkload({ minScore: 0 }, bad).outcome, 'fail');
    assert.equal(evaluateWorkload({ forbid: ['HostPID'] }, bad).outcome, 'pass');
    const v = evaluateWorkload({ forbid: ['HostNetwork'] }, bad);
    assert.equal(v.outcome, 'fail');
    assert.deepEqual(v.evidence.forbidden, ['HostNetwork']);
    assert.equal(evaluateWorkload({ minScore: 3 }, { apiVersion: 'v1', kind: 'ConfigMap' }).outcome, 'skip');
  });
});

describe('plinth lint: manifests', () => {
  test('multi-document files, List kinds, image checks from the policy, positions', () => {
    const text = [
      stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template: { spec: { containers: [{ name: 'a', image: 'nginx' }, { name: 'b', image: `ghcr.io/acme/app:1@${D('e')}` }] } } } }),
      stringify({ apiVersion: 'v1', kind: 'List', items: [POD({ hostPID: true }), { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }] }),
    ].join('---\n');
    const policy = parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: regs\n    mode: enforce\n    allowedRegistries: {registries: [ghcr.io/acme/**]}\n  - name: refs\n    mode: warn\n    imageReferences: {requireDigest: true, forbidLatest: true}\n').policy;
    const r = lintManifests(text, { file: 'm.yaml', policy });
    assert.deepEqual(r.kubesec.map((x) => x.object), ['Deployment/web.default', 'Pod/p.default', 'Service/s.default']);
    const by = (id: string) => r.findings.filter((x) => x.rule === id);
    assert.deepEqual(by('PL102').map((x) => [x.severity, x.line]), [['error', 10], ['error', 24]]);
    assert.deepEqual(by('PL101').map((x) => x.severity), ['warning', 'warning']);
    assert.deepEqual(by('PL103').map((x) => x.message.includes('nginx has no tag')), [true]);
    assert.equal(by('HostPID')[0]!.object, 'Pod/p.default');
    assert.deepEqual([by('HostPID')[0]!.line, by('HostPID')[0]!.column], [25, 16], 'the finding points at hostPID');
    assert.equal(by('HostPID')[0]!.severity, 'error');
  });

  test('hostile input: YAML bomb, deep nesting, garbage, huge files, binary files', () => {
    const bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\nkind: Pod\n';
    const b = lintManifests(bomb, { file: 'bomb.yaml' });
    assert.deepEqual(b.findings.map((x) => x.rule), ['PL190']);
    assert.match(b.findings[0]!.message, /too many YAML aliases/);
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const d = lintManifests(deep, { file: 'deep.yaml' });
    assert.equal(d.findings[0]!.rule, 'PL190');
    assert.match(d.findings[0]!.message, /nested/);
    const g = lintManifests('kind: Pod\nspec: [unclosed\n  : : :\n', { file: 'g.yaml' });
    assert.equal(g.findings[0]!.rule, 'PL190');
    assert.ok(g.findings[0]!.line >= 1);
    const bin = lintText('x.yaml', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]));
    assert.match(bin.errors[0]!, /binary file/);
    const big = lintText('Dockerfile', Buffer.alloc(5 * 1024 * 1024, 0x41));
    assert.match(big.errors[0]!, /larger than/);
    // Random text, Dockerfile-ish and YAML-ish: findings or errors, never an exception.
    const r = mulberry32(16);
    const alphabet = ['FROM ', 'RUN ', 'ARG ', '${', '}', '\\\n', '<<EOF\n', 'EOF\n', '|', '&&', '"', "'", '#', ' hadolint ignore=DL3008\n', '\n', ':', '@sha256:', '- ', '  ', 'kind: Pod\n', '&a ', '*a ', '[', ']', '{', '}', '---\n', 'é', '\t', 'x'];
    for (let i = 0; i < 300; i++) {
      const text = Array.from({ length: Math.floor(r() * 200) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
      for (const name of ['Dockerfile', 'm.yaml']) {
        const res = lintText(name, Buffer.from(text));
        assert.ok(Array.isArray(res.findings) && Array.isArray(res.errors), text);
        assert.deepEqual(res.errors, [], `${name}: ${JSON.stringify(text)}`);
      }
    }
    const notDocker = lintText('Dockerfile', Buffer.from('{"this": "is json"}\n'));
    assert.deepEqual(notDocker.findings.map((x) => x.rule).slice(0, 1), ['DL3061']);
  });
});

describe('plinth lint: CLI, formats, configuration, exit codes', () => {
  let dir: TempDir;
  const p = (...xs: string[]) => path.join(dir.path, ...xs);
  before(async () => {
    dir = await tempDir('lint-cli');
    await writeFile(p('Dockerfile'), 'FROM debian:12\nWORKDIR app\nRUN apt-get install -y curl\n');
    await writeFile(p('clean.Dockerfile'), `FROM debian:12@${D('f')}\nUSER app\n`);
    await writeFile(p('pod.yaml'), stringify(POD({ hostNetwork: true })));
    await writeFile(p('hadolint.yaml'), 'ignored: [DL3008]\ntrustedRegistries: [ghcr.io]\nfailure-threshold: error\noverride:\n  info: [DL3000]\n');
  });
  after(async () => dir?.remove());

  test('table, json; exit 1 at or above --severity, 0 below', async () => {
    const t = await runPlinth(['lint', p('Dockerfile')]);
    assert.equal(t.code, 1, t.stderr);
    assert.match(t.stdout, /Dockerfile:2:1 DL3000 error: Use absolute WORKDIR/);
    assert.match(t.stdout, /1 file\(s\), 4 finding\(s\)/);
    const j = await runPlinth(['lint', p('Dockerfile'), p('pod.yaml'), '--format', 'json', '--severity', 'none']);
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout) as { passed: boolean; files: Array<{ kind: string; findings: Array<{ rule: string }>; kubesec?: Array<{ score: number }> }> };
    assert.deepEqual(out.files.map((f) => f.kind), ['dockerfile', 'kubernetes']);
    assert.equal(out.files[1]!.kubesec![0]!.score, -9);
    assert.equal((await runPlinth(['lint', p('clean.Dockerfile')])).code, 0);
  });

  test('.hadolint.yaml: ignored, trustedRegistries, failure-threshold, override', async () => {
    const r = await runPlinth(['lint', p('Dockerfile'), '--config', p('hadolint.yaml'), '--format', 'json']);
    const f = (JSON.parse(r.stdout) as { files: Array<{ findings: Array<{ rule: string; severity: string }>; ignored: number }> }).files[0]!;
    assert.ok(!f.findings.some((x) => x.rule === 'DL3008'));
    assert.equal(f.ignored, 1);
    assert.equal(f.findings.find((x) => x.rule === 'DL3000')!.severity, 'info');
    assert.equal(f.findings.find((x) => x.rule === 'DL3026')!.severity, 'error');
    assert.equal(r.code, 1, 'DL3026 is an error: at the failure-threshold');
    await writeFile(p('h2.yaml'), 'failure-threshold: error\n');
    assert.equal((await runPlinth(['lint', p('Dockerfile'), '--config', p('h2.yaml'), '--ignore', 'dl3000'])).code, 0, 'warnings below the threshold');
    await writeFile(p('h3.yaml'), 'ignored: nope\n');
    const bad = await runPlinth(['lint', p('Dockerfile'), '--config', p('h3.yaml')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /h3\.yaml:1:\d+: ignored/);
  });

  test('SARIF validates against the SARIF 2.1.0 schema; one rule per ID with help and link; regions', async () => {
    const r = await runPlinth(['lint', p('Dockerfile'), p('pod.yaml'), '--format', 'sarif']);
    const log = JSON.parse(r.stdout) as { runs: Array<{ tool: { driver: { rules: Array<{ id: string; helpUri: string; help: { text: string } }> } }; results: Array<{ ruleId: string; ruleIndex: number; locations: Array<{ physicalLocation: { region: { startLine: number; startColumn: number } } }> }> }> };
    const require = createRequire(import.meta.url);
    const schema = JSON.parse(await readFile(require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'), 'utf8')) as object;
    const Ajv = ((AjvDraft04 as unknown as { default?: unknown }).default ?? AjvDraft04) as unknown as new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] | null } };
    const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false, validateFormats: false, logger: false });
    const validate = ajv.compile(schema);
    assert.ok(validate(log), JSON.stringify(validate.errors?.slice(0, 3)));
    assert.ok(!validate({ ...log, version: '2.0.0' }), 'the schema rejects what is not SARIF 2.1.0');
    const run0 = log.runs[0]!;
    const rules = run0.tool.driver.rules;
    assert.equal(new Set(rules.map((x) => x.id)).size, rules.length);
    assert.ok(rules.find((x) => x.id === 'DL3000')!.helpUri.endsWith('/DL3000'));
    assert.ok(rules.every((x) => x.help.text.length > 0));
    for (const res of run0.results) assert.equal(rules[res.ruleIndex]!.id, res.ruleId);
    assert.deepEqual(run0.results.find((x) => x.ruleId === 'DL3000')!.locations[0]!.physicalLocation.region, { startLine: 2, startColumn: 1, endLine: 2, endColumn: 12 });
    assert.ok(run0.results.some((x) => x.ruleId === 'HostNetwork'));
  });

  test('bad input: missing file, binary file, 50 MB file, stdin, bad flags, bad policy', async () => {
    assert.equal((await runPlinth(['lint', p('nope.yaml')])).code, 2);
    await writeFile(p('bin.yaml'), Buffer.from([1, 2, 0, 3, 0xff, 0xfe]));
    const bin = await runPlinth(['lint', p('bin.yaml')]);
    assert.equal(bin.code, 2);
    assert.match(bin.stdout, /binary file/);
    await writeFile(p('huge.yaml'), Buffer.alloc(50 * 1024 * 1024, 0x61));
    const huge = await runPlinth(['lint', p('huge.yaml')]);
    assert.equal(huge.code, 2);
    assert.match(huge.stdout, /larger than/);
    const stdin = await runPlinth(['lint', '-', '--format', 'kubesec'], { input: stringify(POD({ hostIPC: true })) });
    assert.equal(stdin.code, 1);
    assert.equal((JSON.parse(stdin.stdout) as Array<{ fileName: string; score: number }>)[0]!.fileName, 'STDIN');
    assert.equal((await runPlinth(['lint', p('Dockerfile'), '--format', 'xml'])).code, 2);
    assert.equal((await runPlinth(['lint', p('Dockerfile'), '--severity', 'loud'])).code, 2);
    await writeFile(p('bad-policy.yaml'), 'kind: nope\n');
    assert.equal((await runPlinth(['lint', p('Dockerfile'), '--policy', p('bad-policy.yaml')])).code, 2);
  });

  test('--catalog and directories', async () => {
    await mkdir(p('tree', 'svc'), { recursive: true });
    await writeFile(p('tree', 'svc', 'Dockerfile'), 'FROM redis:7\nUSER a\n');
    await writeFile(p('tree', 'deploy.yml'), stringify(POD({})));
    await writeFile(p('tree', 'README.md'), '# not linted\n');
    const cat: Catalog = { ...emptyCatalog(), bases: [{ name: 'docker.io/library/debian', tag: '12', digest: D('2'), diffIds: [D('1')], status: 'approved' }] };
    await saveCatalog(p('catalog.yaml'), cat);
    const r = await runPlinth(['lint', p('tree'), '--catalog', p('catalog.yaml'), '--format', 'json', '--severity', 'none']);
    const out = JSON.parse(r.stdout) as { files: Array<{ file: string; findings: Array<{ rule: string }> }> };
    assert.deepEqual(out.files.map((f) => path.relative(p('tree'), f.file)), ['deploy.yml', path.join('svc', 'Dockerfile')]);
    assert.ok(out.files[1]!.findings.some((x) => x.rule === 'PL001'));
  });
});

describe('plinth lint --fix against a registry', () => {
  let reg: TestRegistry;
  let dir: TempDir;
  let single: string;
  let index: string;
  let moved: string;
  before(async () => {
    reg = await startRegistry();
    dir = await tempDir('lint-fix');
    const amd = await buildImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'a', content: 'amd64' }]] });
    const arm = await buildImage({ platform: { os: 'linux', architecture: 'arm64' }, layers: [[{ path: 'a', content: 'arm64' }]] });
    const idx = buildIndex([amd, arm]);
    await copyImage(amd.source, await openDestination(`${reg.host}/base/single:1`));
    await copyImage(idx.source, await openDestination(`${reg.host}/base/multi:2`));
    single = amd.descriptor.digest;
    index = idx.descriptor.digest;
    const other = await buildImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'a', content: 'v2' }]] });
    await copyImage(other.source, await openDestination(`${reg.host}/base/single:moved`));
    moved = other.descriptor.digest;
  });
  after(async () => {
    await reg?.stop();
    await dir?.remove();
  });

  test('multi-stage, ARG base, already pinned, platform index; bytes elsewhere unchanged', async () => {
    const h = reg.host;
    const text = `# syntax=docker/dockerfile:1\r\nARG BASE="${h}/base/multi:2"\r\nFROM ${h}/base/single:1 AS build   # builder\r\nRUN make\r\nFROM \${BASE}\r\nFROM build AS again\r\nFROM ${h}/base/single:1@${single}\r\nFROM scratch\r\nCOPY --from=build /a /a\r\n`;
    const r = await fixDockerfile(text, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.changes.map((c) => [c.line, c.action, c.digest, c.viaArg ?? null]), [[3, 'pinned', single, null], [5, 'pinned', index, 'BASE']]);
    const expected = text.replace(`FROM ${h}/base/single:1 AS build`, `FROM ${h}/base/single:1@${single} AS build`).replace(`ARG BASE="${h}/base/multi:2"`, `ARG BASE="${h}/base/multi:2@${index}"`);
    assert.equal(r.text, expected);
    assert.deepEqual(r.skipped.map((s) => s.reason), ['already pinned']);
    // The index must have the build platform.
    const bad = await fixDockerfile(`FROM ${h}/base/single:1\n`, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(bad.changes.length, 1, 'a single-platform image is pinned as it is');
    const noPlat = await fixDockerfile(`FROM --platform=linux/s390x ${h}/base/multi:2\n`);
    assert.match(noPlat.errors[0]!.reason, /no image for the build platform linux\/s390x/);
    const unknown = await fixDockerfile(`FROM ${h}/base/none:1\n`);
    assert.equal(unknown.errors.length, 1);
    assert.equal(unknown.text, `FROM ${h}/base/none:1\n`);
  });

  test('--update refreshes a pin whose tag moved; the CLI writes in place, --dry-run prints the diff', async () => {
    const h = reg.host;
    const text = `FROM ${h}/base/single:moved@${single}\nUSER app\n`;
    const kept = await fixDockerfile(text);
    assert.equal(kept.text, text);
    const upd = await fixDockerfile(text, { update: true });
    assert.equal(upd.text, `FROM ${h}/base/single:moved@${moved}\nUSER app\n`);
    assert.equal(upd.changes[0]!.action, 'updated');
    const file = path.join(dir.path, 'Dockerfile');
    await writeFile(file, `# base\nFROM ${h}/base/single:1\nUSER app\n`);
    const dry = await runPlinth(['lint', '--fix', '--dry-run', file]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, unifiedDiff(file, `# base\nFROM ${h}/base/single:1\nUSER app\n`, `# base\nFROM ${h}/base/single:1@${single}\nUSER app\n`));
    assert.match(dry.stdout, new RegExp(`^\\+FROM ${h.replace(/\./g, '\\.')}/base/single:1@${single}$`, 'm'));
    assert.equal(await readFile(file, 'utf8'), `# base\nFROM ${h}/base/single:1\nUSER app\n`);
    const fix = await runPlinth(['lint', '--fix', file]);
    assert.equal(fix.code, 0, fix.stderr);
    assert.equal(await readFile(file, 'utf8'), `# base\nFROM ${h}/base/single:1@${single}\nUSER app\n`);
    assert.equal((await runPlinth(['lint', file])).code, 0, 'pinned: nothing left to report');
    assert.equal((await runPlinth(['lint', '--update', file])).code, 2, '--update goes with --fix');
  });

  test('a hostile registry: a corrupted manifest or a failing registry pins nothing; the CLI exits 2 and keeps the file', async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: /\/manifests\//, times: 100, action: { corrupt: 'body' } }]);
    try {
      const text = `FROM ${proxy.host}/base/single:1\nUSER app\n`;
      const r = await fixDockerfile(text);
      assert.equal(r.changes.length, 0);
      assert.equal(r.errors.length, 1);
      assert.equal(r.text, text);
      proxy.setFaults([{ match: /\/manifests\//, times: 1000, action: { status: 500 } }]);
      const file = path.join(dir.path, 'Hostile.Dockerfile');
      await writeFile(file, text);
      const cli = await runPlinth(['lint', '--fix', file, '--format', 'json']);
      assert.equal(cli.code, 2, cli.stderr);
      const out = JSON.parse(cli.stdout) as { files: Array<{ changes: unknown[]; errors: Array<{ line: number; reason: string }> }> };
      assert.deepEqual([out.files[0]!.changes.length, out.files[0]!.errors[0]!.line], [0, 1]);
      assert.equal(await readFile(file, 'utf8'), text);
    } finally {
      await proxy.stop();
    }
  });
});
