import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { runPlinth, type CliRun } from './helpers/common.js';
import { buildImage, buildIndex, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { parseImageReference } from '../src/oci/reference.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog, type Catalog, type CatalogEntry } from '../src/provenance/catalog.js';
import type { ProvenanceReport } from '../src/provenance/report.js';
import type { BaseReport } from '../src/provenance/base.js';
import type { ScanResult, ScanVulnerability } from '../src/vuln/scan.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { PlinthError } from '../src/util/errors.js';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';
import {
  compileGlob,
  evaluate,
  expiryTime,
  factNeeds,
  gatherFacts,
  globMatch,
  loadPolicy,
  mergeDecisions,
  parsePolicy,
  policyJsonSchema,
  type Decision,
  type ImageFacts,
  type ImagePolicy,
  type PlatformFacts,
  type PolicyContext,
  type RuleResult,
} from '../src/policy/index.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const NOW = Date.parse('2025-03-01T12:00:00Z');
const DAY = 86_400_000;
const D = (c: string) => `sha256:${c.repeat(64)}`;

// ---------------------------------------------------------------------------------------------
// In-memory facts
// ---------------------------------------------------------------------------------------------

function policy(rulesYaml: string, spec = ''): ImagePolicy {
  const text = `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: test\nspec:\n${spec}  rules:\n${rulesYaml}`;
  return parsePolicy(text, 'test.yaml').policy;
}

type BaseIn = Partial<BaseReport> & { name: string | null };
function base(b: BaseIn): BaseReport {
  return {
    tag: null,
    digest: null,
    evidence: [{ kind: 'manifest-annotation', source: 'manifest annotation', name: b.name, digest: b.digest ?? null, confirmed: true }],
    confidence: 'high',
    layers: { base: 2, image: 1, total: 3 },
    catalog: null,
    candidates: [],
    conflicts: [],
    verified: true,
    tagVerified: null,
    ...b,
  };
}

function prov(b: BaseReport | null, up: Partial<ProvenanceReport['upToDate']> = {}): ProvenanceReport {
  return {
    image: { reference: 'x', digest: D('1'), index: null, platform: 'linux/amd64' },
    base: b,
    baseCandidates: [],
    upToDate: {
      baseStatus: b ? (b.catalog?.status ?? 'not-in-catalog') : null,
      line: b?.catalog?.line ?? b?.name ?? null,
      newestApproved: null,
      isNewestApproved: null,
      baseTagMoved: null,
      imageAgeDays: null,
      baseAgeDays: null,
      ...up,
    },
    findings: [],
  } as unknown as ProvenanceReport;
}

function vuln(id: string, severity: ScanVulnerability['severity'], o: Partial<ScanVulnerability> = {}): ScanVulnerability {
  return {
    id, aliases: [], package: 'libc6', source: 'glibc', installedVersion: '2.36-9', sourceVersion: '2.36-9', fixedVersion: '2.36-10', status: 'fixed',
    severity, severitySource: 'cvss_v3', title: id, ecosystem: 'Debian:12', layer: null, layerIndex: 0, origin: 'base', pkgType: 'deb', ...o,
  };
}

function scanOf(vulns: ScanVulnerability[]): ScanResult {
  return {
    image: { reference: 'x', digest: D('1'), platform: 'linux/amd64' }, os: { family: 'debian', version: '12' }, ecosystem: 'Debian:12', base: null, packages: 10,
    vulnerabilities: vulns, summary: { total: vulns.length, bySeverity: { UNKNOWN: 0, LOW: 0, MEDIUM: 0, HIGH: 0, CRITICAL: 0 }, base: 0, image: 0, fixable: 0 }, notes: [],
  };
}

function platform(o: Partial<PlatformFacts> = {}): PlatformFacts {
  return { platform: 'linux/amd64', digest: D('1'), labels: {}, annotations: {}, provenance: null, scan: null, ...o };
}

function facts(image: string, platforms: PlatformFacts[] = [], o: Partial<ImageFacts> = {}): ImageFacts {
  let reference = null;
  try {
    reference = parseImageReference(image);
  } catch {
    /* local */
  }
  return {
    image, reference, transport: reference ? 'registry' : 'oci', digest: platforms[0]?.digest ?? null, mediaType: null, platforms,
    needs: { manifest: true, labels: true, provenance: true, registryCheck: false, verifyBase: false, scan: false, signatures: false }, scanDb: null, signatures: null, errors: [], ...o,
  };
}

function only(d: Decision, rule?: string): RuleResult {
  const r = rule ? d.results.find((x) => x.rule === rule) : d.results[0];
  assert.ok(r, `no result for ${rule}`);
  return r;
}

const approvedCatalog = (digest = D('b'), status: 'approved' | 'deprecated' = 'approved') =>
  ({ status, line: 'docker.io/library/debian', digest, platform: 'linux/amd64', created: '2025-01-01T00:00:00Z', notes: null }) as const;

// ---------------------------------------------------------------------------------------------
// Schema and loading
// ---------------------------------------------------------------------------------------------

describe('policy: schema and loading', () => {
  const head = 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: t\nspec:\n  rules:\n';
  const fails = (text: string): string => {
    try {
      parsePolicy(text, 'p.yaml');
    } catch (e) {
      assert.ok(e instanceof PlinthError);
      assert.equal(e.code, 'USAGE');
      return e.message;
    }
    assert.fail('the policy was accepted');
  };

  test('schema errors give the line, the field and what is wrong', () => {
    const m = fails(`${head}    - name: vulns\n      mode: enforce\n      vulnerabilities:\n        severity: HGIH\n`);
    assert.match(m, /^p\.yaml:10:\d+: spec\.rules\[0\]\.vulnerabilities\.severity: unknown severity \(use one of UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL\)/);
    assert.match(fails(`${head}    - name: a\n      mode: block\n      requireBaseImage: {}\n`), /p\.yaml:8:\d+: spec\.rules\[0\]\.mode: .*enforce.*audit.*warn/);
    assert.match(fails(`${head}    - name: a\n      mode: enforce\n`), /p\.yaml:7:\d+: spec\.rules\[0\]: a rule needs one rule kind: requireBaseImage, allowedBaseImages/);
    assert.match(fails(`${head}    - name: a\n      mode: enforce\n      requireBaseImage: {}\n      allowedRegistries: { registries: [x] }\n`), /p\.yaml:10:\d+: spec\.rules\[0\]\.allowedRegistries: a rule has exactly one rule kind, this one has requireBaseImage and allowedRegistries/);
    assert.match(fails(`${head}    - name: a\n      mode: enforce\n      requireBaseImage: {}\n      colour: red\n`), /p\.yaml:7:\d+: spec\.rules\[0\]: Unrecognized key: "colour"/);
    assert.match(fails(`${head}    - name: a\n      mode: enforce\n      imageReferences: {}\n`), /p\.yaml:9:\d+: spec\.rules\[0\]\.imageReferences: set requireDigest: true and\/or forbidLatest: true/);
    assert.match(fails(`${head}    - name: a\n      mode: enforce\n      allowedBaseImages: { deprecated: warn }\n`), /spec\.rules\[0\]\.allowedBaseImages: set catalogApproved: true and\/or images/);
    assert.match(fails(head.replace('ImagePolicy', 'ClusterPolicy') + '    - name: a\n      mode: enforce\n      requireBaseImage: {}\n'), /p\.yaml:2:7: kind: /);
    // YAML syntax errors too.
    assert.match(fails(`${head}    - name: a\n      mode: [enforce\n`), /^p\.yaml:\d+:\d+: invalid YAML/);
  });

  test('semantic checks: duplicate names, bad globs, bad dates, unknown placeholders, with lines', () => {
    const m = fails(`${head}    - name: a
      mode: enforce
      message: "{{img}} is bad"
      requireBaseImage: {}
    - name: a
      mode: enforce
      match: { namespaces: ["prod-[ab"] }
      allowedRegistries: { registries: ["ghcr.io/acme/[z-"] }
    - name: v
      mode: enforce
      vulnerabilities:
        severity: HIGH
        exceptions:
          - { id: CVE-2024-1, reason: ok, expires: 2025-02-30 }
          - { id: CVE-2024-2, reason: ok, expires: next week }
`);
    const lines = m.split('\n');
    assert.match(lines[0]!, /^p\.yaml:9:\d+: spec\.rules\[0\]\.message: unknown placeholder \{\{img\}\}/);
    assert.match(lines[1]!, /^p\.yaml:11:\d+: spec\.rules\[1\]\.name: duplicate rule name "a"/);
    assert.match(lines[2]!, /^p\.yaml:13:\d+: spec\.rules\[1\]\.match\.namespaces\[0\]: invalid pattern "prod-\[ab": unterminated character class/);
    assert.match(lines[3]!, /^p\.yaml:14:\d+: spec\.rules\[1\]\.allowedRegistries\.registries\[0\]: invalid pattern/);
    assert.match(lines[4]!, /^p\.yaml:20:\d+: spec\.rules\[2\]\.vulnerabilities\.exceptions\[0\]\.expires: "2025-02-30" is not a date/);
    assert.match(lines[5]!, /^p\.yaml:21:\d+: .*exceptions\[1\]\.expires: "next week" is not a date/);
    assert.equal(lines.length, 6);
  });

  test('warnings: expired exceptions, break-glass annotations the ImagePolicyWebhook does not forward', () => {
    const p = parsePolicy(
      `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: { name: t }\nspec:\n  breakGlass: { annotation: example.com/break-glass, mode: audit }\n  rules:\n    - name: v\n      mode: enforce\n      vulnerabilities:\n        severity: high\n`.replace('high', 'HIGH') +
        '        exceptions: [{ id: CVE-1, reason: r, expires: 2024-12-31 }]\n',
      'w.yaml',
      { now: NOW },
    );
    assert.equal(p.warnings.length, 2);
    assert.match(p.warnings[0]!, /w\.yaml:11:\d+: .*the exception for CVE-1 expired on 2024-12-31/);
    assert.match(p.warnings[1]!, /w\.yaml:5:\d+: spec\.breakGlass\.annotation: .*only forwards annotations named \*\.image-policy\.k8s\.io\/\*/);
  });

  test('loadPolicy: version is the sha256 of the bytes; the examples load; missing files are usage errors', async () => {
    const dir = path.join(root, 'examples', 'policies');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
    assert.deepEqual(files, ['approved-bases.yaml', 'registries-only.yaml', 'signed.yaml', 'strict.yaml']);
    for (const f of files) {
      const p = await loadPolicy(path.join(dir, f), { now: NOW });
      const bytes = await readFile(path.join(dir, f));
      assert.equal(p.version, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      assert.deepEqual(p.warnings, []);
    }
    const strict = await loadPolicy(path.join(dir, 'strict.yaml'));
    const kinds = new Set(strict.policy.spec.rules.map((r) => Object.keys(r).find((k) => !['name', 'mode', 'message', 'match'].includes(k))));
    assert.deepEqual([...kinds].sort(), ['allowedBaseImages', 'allowedRegistries', 'baseFreshness', 'imageReferences', 'requireBaseImage', 'requiredLabels', 'signatures', 'vulnerabilities']);
    const ab = await loadPolicy(path.join(dir, 'approved-bases.yaml'));
    assert.deepEqual(ab.policy.spec.rules.map((r) => Object.keys(r).at(-1)), ['requireBaseImage', 'allowedBaseImages']);
    await assert.rejects(loadPolicy(path.join(dir, 'nope.yaml')), (e: PlinthError) => e.code === 'USAGE' && /does not exist/.test(e.message));
  });

  test('schemas/policy.schema.json is generated from the zod schema and up to date', async () => {
    const file = path.join(root, 'schemas', 'policy.schema.json');
    const now = `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
    if (process.env.PLINTH_UPDATE_SCHEMAS === '1') await writeFile(file, now);
    const checkedIn = await readFile(file, 'utf8');
    assert.equal(checkedIn, now, 'schemas/policy.schema.json is stale: run `npx tsc -p . && node scripts/policy-schema.mjs`');
    const s = policyJsonSchema() as { properties: { spec: { properties: { rules: { items: { oneOf: unknown[]; properties: Record<string, unknown> } } } } } };
    const rule = s.properties.spec.properties.rules.items;
    assert.equal(rule.oneOf.length, 9);
    assert.ok(rule.properties['vulnerabilities']);
    assert.ok(rule.properties['signatures']);
    assert.ok(rule.properties['workloadSecurity']);
  });

  test('globs: * stays within a path segment, ** crosses; classes; bad patterns are errors', () => {
    assert.ok(globMatch('ghcr.io/acme/*', 'ghcr.io/acme/app'));
    assert.ok(!globMatch('ghcr.io/acme/*', 'ghcr.io/acme/team/app'));
    assert.ok(globMatch('ghcr.io/acme/**', 'ghcr.io/acme/team/app'));
    assert.ok(globMatch('prod-[a-c]?', 'prod-b1'));
    assert.ok(!globMatch('prod-[!a-c]?', 'prod-b1'));
    assert.ok(globMatch('a.b', 'a.b') && !globMatch('a.b', 'aXb'));
    assert.ok(globMatch('v1\\*', 'v1*') && !globMatch('v1\\*', 'v12'));
    assert.throws(() => compileGlob('[abc'), /unterminated/);
    assert.throws(() => compileGlob('abc\\'), /trailing backslash/);
    assert.equal(expiryTime('2025-02-28'), Date.parse('2025-03-01T00:00:00Z'));
    assert.equal(expiryTime('2025-02-29'), undefined);
    assert.equal(expiryTime('2025-02-28T10:00:00+02:00'), Date.parse('2025-02-28T08:00:00Z'));
  });
});

// ---------------------------------------------------------------------------------------------
// Rules, one kind at a time, on facts built in memory
// ---------------------------------------------------------------------------------------------

describe('policy: rules', () => {
  const IMG = 'registry.example.com/team/app:1.0';

  test('requireBaseImage: pass, fail (Kyverno-style message), declared only, digest, confidence', () => {
    const p = policy('    - name: require-base\n      mode: enforce\n      requireBaseImage:\n');
    const ok = evaluate(p, facts(IMG, [platform({ provenance: prov(base({ name: 'docker.io/library/debian', tag: '12', digest: D('b') })) })]), {}, NOW);
    assert.equal(ok.allowed, true);
    assert.equal(only(ok).outcome, 'pass');
    assert.match(only(ok).reason, /base docker\.io\/library\/debian:12@sha256:bbbb.*high confidence, from manifest-annotation/);

    const unknown = evaluate(p, facts(IMG, [platform({ provenance: prov(null) })]), {}, NOW);
    assert.equal(unknown.allowed, false);
    assert.equal(only(unknown).outcome, 'fail');
    assert.equal(only(unknown).action, 'deny');
    assert.match(unknown.denials[0]!, /^\[require-base\] registry\.example\.com\/team\/app:1\.0: Images must specify a source\/base image from which they are built\./);
    assert.match(unknown.denials[0]!, /the base image is unknown/);
    assert.deepEqual(only(unknown).evidence['base'], null);

    const fp = base({ name: 'docker.io/library/debian', digest: D('b'), evidence: [{ kind: 'fingerprint', source: 'catalog', name: 'docker.io/library/debian', digest: D('b'), confirmed: true }] });
    const declared = policy('    - name: declared\n      mode: enforce\n      requireBaseImage: { declared: true }\n');
    assert.match(only(evaluate(declared, facts(IMG, [platform({ provenance: prov(fp) })]), {}, NOW)).reason, /only recognised by its layers; the image does not declare it/);
    assert.equal(only(evaluate(p, facts(IMG, [platform({ provenance: prov(fp) })]), {}, NOW)).outcome, 'pass');

    const labelOnly = base({ name: 'docker.io/library/ubuntu', tag: 'jammy', confidence: 'low' });
    const digestRule = policy('    - name: d\n      mode: enforce\n      requireBaseImage: { requireDigest: true }\n');
    assert.match(only(evaluate(digestRule, facts(IMG, [platform({ provenance: prov(labelOnly) })]), {}, NOW)).reason, /ubuntu:jammy is named without a digest/);
    const conf = policy('    - name: c\n      mode: enforce\n      requireBaseImage: { minConfidence: medium }\n');
    assert.match(only(evaluate(conf, facts(IMG, [platform({ provenance: prov(labelOnly) })]), {}, NOW)).reason, /low confidence \(at least medium is required\)/);
  });

  test('allowedBaseImages: catalog approved, list (names, globs, digests), deprecated deny/warn, unknown base', () => {
    const cat = policy('    - name: approved\n      mode: enforce\n      allowedBaseImages: { catalogApproved: true }\n');
    const approved = base({ name: 'docker.io/library/debian', tag: '12', digest: D('b'), catalog: approvedCatalog() });
    const r1 = evaluate(cat, facts(IMG, [platform({ provenance: prov(approved) })]), {}, NOW);
    assert.equal(r1.allowed, true);
    assert.match(only(r1).reason, /is allowed \(approved in the catalog\)/);

    const stranger = base({ name: 'docker.io/library/alpine', tag: '3.19', digest: D('c') });
    const r2 = evaluate(cat, facts(IMG, [platform({ provenance: prov(stranger) })]), {}, NOW);
    assert.equal(r2.allowed, false);
    assert.match(r2.denials[0]!, /This container image's base is not in the approved list or is not specified\. Only pre-approved base images may be used\. Please contact the platform team for assistance\./);
    assert.match(only(r2).reason, /the base docker\.io\/library\/alpine:3\.19@sha256:cccc.* is not approved: it is not in the catalog/);

    const r3 = evaluate(cat, facts(IMG, [platform({ provenance: prov(null) })]), {}, NOW);
    assert.equal(only(r3).outcome, 'fail');
    assert.match(only(r3).reason, /the base image is unknown/);

    const list = policy('    - name: list\n      mode: enforce\n      allowedBaseImages:\n        images: ["debian:12*", "cgr.dev/chainguard/**", "' + D('e') + '"]\n');
    assert.match(only(evaluate(list, facts(IMG, [platform({ provenance: prov(approved) })]), {}, NOW)).reason, /matches debian:12\*/);
    const cg = base({ name: 'cgr.dev/chainguard/static', digest: D('f') });
    assert.equal(only(evaluate(list, facts(IMG, [platform({ provenance: prov(cg) })]), {}, NOW)).outcome, 'pass');
    const byDigest = base({ name: 'quay.io/x/y', digest: D('e') });
    assert.match(only(evaluate(list, facts(IMG, [platform({ provenance: prov(byDigest) })]), {}, NOW)).reason, new RegExp(`matches ${D('e')}`));
    assert.match(only(evaluate(list, facts(IMG, [platform({ provenance: prov(stranger) })]), {}, NOW)).reason, /matches none of debian:12\*, cgr\.dev\/chainguard\/\*\*/);

    // A declared name and digest whose layers could not be checked (not in the catalog, registry
    // unreadable) can be forged: not enough by default, enough with an explicit minConfidence.
    const unchecked = base({ name: 'docker.io/library/debian', tag: '12', digest: D('d'), confidence: 'medium', layers: { base: null, image: null, total: 3 }, verified: false });
    const r4 = only(evaluate(list, facts(IMG, [platform({ provenance: prov(unchecked) })]), {}, NOW));
    assert.equal(r4.outcome, 'fail');
    assert.match(r4.reason, /only claimed, not confirmed \(medium confidence; its layers could not be checked against the image's/);
    // When the base's registry could not be read (rate limit, auth, network), the rule errors:
    // the failure policy decides, and the decision is not cached (facts.errors is not empty).
    const flaky = facts(IMG, [platform({ provenance: prov(unchecked) })], { errors: [{ fact: 'base-lookup', message: 'could not look up base docker.io/library/debian@sha256:dddd: HTTP 429' }] });
    const r5 = only(evaluate(list, flaky, {}, NOW));
    assert.equal(r5.outcome, 'error');
    assert.match(r5.reason, /could not be checked: could not look up base .*429/);
    const lenient = policy('    - name: list\n      mode: enforce\n      allowedBaseImages:\n        images: ["debian:12*"]\n        minConfidence: medium\n');
    assert.equal(only(evaluate(lenient, facts(IMG, [platform({ provenance: prov(unchecked) })]), {}, NOW)).outcome, 'pass');
    // Several catalog bases tying on the same layers (medium, but confirmed by layers) pass.
    const tied = base({ name: 'docker.io/library/debian', tag: '12', digest: D('b'), confidence: 'medium', catalog: approvedCatalog() });
    assert.equal(only(evaluate(cat, facts(IMG, [platform({ provenance: prov(tied) })]), {}, NOW)).outcome, 'pass');

    // A name claimed by a label alone (low confidence) is not enough by default.
    const claimed = base({ name: 'docker.io/library/debian', tag: '12', confidence: 'low', verified: false });
    assert.match(only(evaluate(list, facts(IMG, [platform({ provenance: prov(claimed) })]), {}, NOW)).reason, /only claimed, not confirmed \(low confidence; no digest\)/);

    const both = policy('    - name: both\n      mode: enforce\n      allowedBaseImages: { catalogApproved: true, images: ["cgr.dev/**"], requireBoth: true }\n');
    assert.match(only(evaluate(both, facts(IMG, [platform({ provenance: prov(approved) })]), {}, NOW)).reason, /matches none of cgr\.dev\/\*\*/);

    const old = base({ name: 'docker.io/library/debian', tag: '11', digest: D('a'), catalog: approvedCatalog(D('a'), 'deprecated') });
    const newest = { name: 'docker.io/library/debian', tag: '12', digest: D('b'), created: '2025-01-01T00:00:00Z' };
    const denyDep = evaluate(cat, facts(IMG, [platform({ provenance: prov(old, { newestApproved: newest, isNewestApproved: false }) })]), {}, NOW);
    assert.equal(denyDep.allowed, false);
    assert.match(only(denyDep).reason, /debian:11@sha256:aaaa.* is deprecated in the catalog; rebuild on docker\.io\/library\/debian:12@sha256:bbbb/);
    const warnDep = policy('    - name: approved\n      mode: enforce\n      allowedBaseImages: { catalogApproved: true, deprecated: warn }\n');
    const w = evaluate(warnDep, facts(IMG, [platform({ provenance: prov(old, { newestApproved: newest, isNewestApproved: false }) })]), {}, NOW);
    assert.equal(w.allowed, true);
    assert.equal(only(w).outcome, 'fail');
    assert.equal(only(w).action, 'warn');
    assert.equal(w.warnings.length, 1);
    assert.match(w.warnings[0]!, /allowed but deprecated in the catalog/);
  });

  test('allowedRegistries: globs over registry/repository, whole registries, never a local source', () => {
    const p = policy('    - name: regs\n      mode: enforce\n      allowedRegistries: { registries: [registry.example.com, "ghcr.io/acme/**", "docker.io/library/*"] }\n');
    const judge = (img: string) => only(evaluate(p, facts(img), {}, NOW));
    assert.equal(judge('registry.example.com/a/b/c:1').outcome, 'pass');
    assert.equal(judge('ghcr.io/acme/team/app@' + D('1')).outcome, 'pass');
    assert.equal(judge('nginx:1.25').outcome, 'pass');
    assert.equal(judge('bitnami/nginx').outcome, 'fail');
    const evil = judge('registry.example.com.evil.io/x');
    assert.equal(evil.outcome, 'fail');
    assert.match(evil.reason, /registry\.example\.com\.evil\.io\/x is not in an allowed registry/);
    assert.match(evil.message, /Images may only come from approved registries/);
    assert.equal(judge('oci:/tmp/layout').outcome, 'skip');
  });

  test('imageReferences: digests required, latest forbidden (written or implied), pinning by the webhook', () => {
    const digest = policy('    - name: pinned\n      mode: enforce\n      imageReferences: { requireDigest: true }\n');
    assert.equal(only(evaluate(digest, facts(`ghcr.io/a/b@${D('1')}`), {}, NOW)).outcome, 'pass');
    assert.equal(only(evaluate(digest, facts(`ghcr.io/a/b:1@${D('1')}`), {}, NOW)).outcome, 'pass');
    const tagOnly = only(evaluate(digest, facts('ghcr.io/a/b:1', [], { digest: D('9') }), {}, NOW));
    assert.equal(tagOnly.outcome, 'fail');
    assert.match(tagOnly.reason, new RegExp(`ghcr\\.io/a/b:1 has no digest \\(use ghcr\\.io/a/b@${D('9')}\\)`));
    const pinning = only(evaluate(digest, facts('ghcr.io/a/b:1', [], { digest: D('9') }), { pinning: true }, NOW));
    assert.equal(pinning.outcome, 'pass');
    assert.match(pinning.reason, /will be pinned/);

    const latest = policy('    - name: no-latest\n      mode: enforce\n      imageReferences: { forbidLatest: true }\n');
    assert.match(only(evaluate(latest, facts('ghcr.io/a/b:latest'), {}, NOW)).reason, /uses the tag "latest"/);
    assert.match(only(evaluate(latest, facts('nginx'), {}, NOW)).reason, /nginx has no tag, which means "latest"/);
    assert.equal(only(evaluate(latest, facts(`nginx:latest@${D('1')}`), {}, NOW)).outcome, 'pass');
    assert.equal(only(evaluate(latest, facts('nginx:1.25'), {}, NOW)).outcome, 'pass');
  });

  test('baseFreshness: newest approved, age, tag moved; unknown base is skipped', () => {
    const b = base({ name: 'docker.io/library/debian', tag: '12', digest: D('a'), catalog: { ...approvedCatalog(D('a')), created: '2024-10-01T00:00:00Z' } });
    const newest = { name: 'docker.io/library/debian', tag: '12.9', digest: D('b'), created: '2025-02-01T00:00:00Z' };
    const newestRule = policy('    - name: fresh\n      mode: warn\n      baseFreshness: { newestApproved: true }\n');
    const behind = evaluate(newestRule, facts(IMG, [platform({ provenance: prov(b, { newestApproved: newest, isNewestApproved: false }) })]), {}, NOW);
    assert.equal(behind.allowed, true);
    assert.match(behind.warnings[0]!, /is not the newest approved version of docker\.io\/library\/debian: that is docker\.io\/library\/debian:12\.9@sha256:bbbb.*\(2025-02-01\)/);
    assert.equal(only(evaluate(newestRule, facts(IMG, [platform({ provenance: prov(b, { newestApproved: newest, isNewestApproved: true }) })]), {}, NOW)).outcome, 'pass');
    assert.match(only(evaluate(newestRule, facts(IMG, [platform({ provenance: prov(base({ name: 'quay.io/x', digest: D('c') })) })]), {}, NOW)).reason, /is not in the catalog/);
    assert.equal(only(evaluate(newestRule, facts(IMG, [platform({ provenance: prov(null) })]), {}, NOW)).outcome, 'skip');

    const age = policy('    - name: age\n      mode: enforce\n      baseFreshness: { maxAgeDays: 90 }\n');
    const old = only(evaluate(age, facts(IMG, [platform({ provenance: prov(b) })]), {}, NOW));
    assert.equal(old.outcome, 'fail');
    assert.match(old.reason, /is 151 days old \(created 2024-10-01\); at most 90 are allowed/);
    assert.equal(only(evaluate(age, facts(IMG, [platform({ provenance: prov(b) })]), {}, Date.parse('2024-12-01T00:00:00Z'))).outcome, 'pass');

    const tag = policy('    - name: tag\n      mode: enforce\n      baseFreshness: { tagNotMoved: true }\n');
    const moved = { tag: 'docker.io/library/debian:12', now: D('b'), was: D('a'), moved: true };
    assert.match(only(evaluate(tag, facts(IMG, [platform({ provenance: prov(b, { baseTagMoved: moved }) })]), {}, NOW)).reason, /the base tag docker\.io\/library\/debian:12 has moved/);
    assert.equal(only(evaluate(tag, facts(IMG, [platform({ provenance: prov(b, { baseTagMoved: { ...moved, now: D('a'), moved: false } }) })]), {}, NOW)).outcome, 'pass');
    const unchecked = evaluate(tag, facts(IMG, [platform({ provenance: prov(b) })], { errors: [{ fact: 'registry-check', message: 'could not check tag docker.io/library/debian:12: connection refused' }] }), {}, NOW);
    assert.equal(only(unchecked).outcome, 'error');
    assert.equal(unchecked.allowed, false);
    assert.match(only(unchecked).reason, /connection refused/);
  });

  test('vulnerabilities: threshold, unfixed, origin, exceptions that expire', () => {
    const vulns = [vuln('CVE-2024-1', 'CRITICAL'), vuln('CVE-2024-2', 'HIGH', { fixedVersion: null, status: 'affected', package: 'curl', origin: 'image' }), vuln('CVE-2024-3', 'MEDIUM')];
    const f = facts(IMG, [platform({ provenance: prov(null), scan: scanOf(vulns) })], { scanDb: '/db' });
    const high = policy('    - name: vulns\n      mode: enforce\n      vulnerabilities: { severity: HIGH }\n');
    const r = evaluate(high, f, {}, NOW);
    assert.equal(r.allowed, false);
    assert.match(only(r).reason, /^2 vulnerabilities of severity HIGH or higher: CVE-2024-1 \(CRITICAL, libc6 2\.36-9 → 2\.36-10, from the base\), CVE-2024-2 \(HIGH, curl 2\.36-9, no fix, from the image\)$/);
    assert.deepEqual((only(r).evidence['vulnerabilities'] as Array<{ id: string }>).map((v) => v.id), ['CVE-2024-1', 'CVE-2024-2']);

    const fixedOnly = policy('    - name: vulns\n      mode: enforce\n      vulnerabilities: { severity: HIGH, ignoreUnfixed: true }\n');
    assert.match(only(evaluate(fixedOnly, f, {}, NOW)).reason, /^1 vulnerability of severity HIGH or higher with a fix: CVE-2024-1/);
    const imageOnly = policy('    - name: vulns\n      mode: enforce\n      vulnerabilities: { severity: HIGH, origin: image }\n');
    assert.match(only(evaluate(imageOnly, f, {}, NOW)).reason, /^1 vulnerability .*CVE-2024-2/);

    const withExceptions = policy(`    - name: vulns
      mode: enforce
      vulnerabilities:
        severity: HIGH
        exceptions:
          - { id: CVE-2024-1, reason: not reachable, expires: 2025-03-31 }
          - { id: GHSA-xxxx, reason: alias, images: ["registry.example.com/team/**"] }
          - { id: CVE-2024-2, reason: other team, images: ["ghcr.io/**"] }
`);
    const aliased = facts(IMG, [platform({ scan: scanOf([vulns[0]!, vuln('DSA-1', 'HIGH', { aliases: ['GHSA-xxxx'] })]) })]);
    const ok = evaluate(withExceptions, aliased, {}, NOW);
    assert.equal(ok.allowed, true);
    assert.match(only(ok).reason, /no vulnerabilities of severity HIGH or higher \(2 excused by exceptions: CVE-2024-1, DSA-1\)/);
    // The image pattern limits an exception.
    assert.match(only(evaluate(withExceptions, f, {}, NOW)).reason, /^1 vulnerability .*CVE-2024-2/);
    // After the expiry date (valid through 2025-03-31, UTC) the exception stops excusing.
    assert.equal(evaluate(withExceptions, aliased, {}, Date.parse('2025-03-31T23:59:59Z')).allowed, true);
    const expired = evaluate(withExceptions, aliased, {}, Date.parse('2025-04-01T00:00:00Z'));
    assert.equal(expired.allowed, false);
    assert.match(only(expired).reason, /^1 vulnerability .*CVE-2024-1.*; expired exception\(s\): CVE-2024-1 \(expired 2025-03-31\)$/);
  });

  test('vulnerabilities without a database: an error outcome that enforce treats as deny (failurePolicy open warns)', () => {
    const f = facts(IMG, [platform({ provenance: prov(null) })], { errors: [{ fact: 'scan', message: 'no vulnerability database is configured (plinth check --db PATH; fill it with plinth db import/update/pull)', code: 'IO' }] });
    const p = policy('    - name: vulns\n      mode: enforce\n      vulnerabilities: { severity: CRITICAL }\n');
    const d = evaluate(p, f, {}, NOW);
    assert.equal(d.allowed, false);
    assert.equal(only(d).outcome, 'error');
    assert.match(d.denials[0]!, /no vulnerability database/);
    const open = evaluate(policy('    - name: vulns\n      mode: enforce\n      vulnerabilities: { severity: CRITICAL }\n', '  failurePolicy: open\n'), f, {}, NOW);
    assert.equal(open.allowed, true);
    assert.equal(only(open).action, 'warn');
    assert.match(open.warnings[0]!, /no vulnerability database.*\[failurePolicy: open\]/);
  });

  test('requiredLabels: keys, value patterns, annotations count too', () => {
    const p = policy('    - name: labels\n      mode: enforce\n      requiredLabels:\n        labels:\n          - key: org.opencontainers.image.source\n            value: "https://github.com/acme/**"\n          - key: team\n');
    const good = platform({ labels: { team: 'core' }, annotations: { 'org.opencontainers.image.source': 'https://github.com/acme/app' } });
    assert.equal(only(evaluate(p, facts(IMG, [good]), {}, NOW)).outcome, 'pass');
    const bad = only(evaluate(p, facts(IMG, [platform({ labels: { 'org.opencontainers.image.source': 'https://gitlab.com/x/y' } })]), {}, NOW));
    assert.equal(bad.outcome, 'fail');
    assert.equal(bad.reason, 'label org.opencontainers.image.source="https://gitlab.com/x/y" does not match https://github.com/acme/**; label team is missing');
    assert.match(bad.message, /Images must carry the labels org\.opencontainers\.image\.source=https:\/\/github\.com\/acme\/\*\*, team\./);
    const noAnn = policy('    - name: labels\n      mode: enforce\n      requiredLabels: { labels: [{ key: org.opencontainers.image.source }], annotations: false }\n');
    assert.equal(only(evaluate(noAnn, facts(IMG, [good]), {}, NOW)).outcome, 'fail');
  });

  test('multi-platform images: a rule fails if any platform fails, and says which', () => {
    const p = policy('    - name: approved\n      mode: enforce\n      allowedBaseImages: { catalogApproved: true }\n');
    const amd = platform({ platform: 'linux/amd64', digest: D('1'), provenance: prov(base({ name: 'docker.io/library/debian', digest: D('b'), catalog: approvedCatalog() })) });
    const arm = platform({ platform: 'linux/arm64/v8', digest: D('2'), provenance: prov(null) });
    const d = evaluate(p, facts(IMG, [amd, arm]), {}, NOW);
    assert.equal(d.allowed, false);
    const r = only(d);
    assert.deepEqual(r.platforms, ['linux/arm64/v8']);
    assert.match(r.reason, /^linux\/arm64\/v8: the base image is unknown.* \(other platforms: linux\/amd64 pass\)$/);
    assert.deepEqual(Object.keys(r.evidence['platforms'] as object), ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(evaluate(p, facts(IMG, [amd, { ...amd, platform: 'linux/arm64', digest: D('2') }]), {}, NOW).allowed, true);
    // A platform whose facts could not be read is an error, not a pass.
    const broken = evaluate(p, facts(IMG, [amd, { ...arm, provenance: null }], { errors: [{ fact: 'provenance', message: 'blob unknown', platform: 'linux/arm64/v8' }] }), {}, NOW);
    assert.equal(only(broken).outcome, 'error');
    assert.match(only(broken).reason, /linux\/arm64\/v8: blob unknown/);
  });

  test('match and exclude: namespaces, labels, image patterns; unknown context applies the rule', () => {
    const p = policy(`    - name: prod
      mode: enforce
      match:
        namespaces: ["prod-*"]
        excludeNamespaces: [prod-sandbox]
        labels: { tier: "front*" }
        excludeLabels: { plinth.dev/exempt: "true" }
        images: ["registry.example.com/**"]
        excludeImages: ["registry.example.com/legacy/**"]
      imageReferences: { requireDigest: true }
`);
    const judge = (img: string, ctx: PolicyContext) => only(evaluate(p, facts(img), ctx, NOW));
    const front = { tier: 'frontend' };
    assert.equal(judge(IMG, { namespace: 'prod-eu', labels: front }).outcome, 'fail');
    assert.match(judge(IMG, { namespace: 'dev', labels: front }).reason, /does not apply: namespace "dev" is not one of prod-\*/);
    assert.match(judge(IMG, { namespace: 'prod-sandbox', labels: front }).reason, /namespace "prod-sandbox" is excluded/);
    assert.match(judge(IMG, { namespace: 'prod-eu', labels: { tier: 'backend' } }).reason, /labels do not match tier=front\*/);
    assert.match(judge(IMG, { namespace: 'prod-eu', labels: { ...front, 'plinth.dev/exempt': 'true' } }).reason, /match the exclusion plinth\.dev\/exempt=true/);
    assert.match(judge('ghcr.io/x/y:1', { namespace: 'prod-eu', labels: front }).reason, /the image does not match registry\.example\.com\/\*\*/);
    assert.match(judge('registry.example.com/legacy/x:1', { namespace: 'prod-eu', labels: front }).reason, /the image is excluded/);
    assert.equal(judge('registry.example.com/legacy/x:1', {}).outcome, 'skip');
    // No namespace or labels in the context (plinth check): those conditions are not evaluated.
    assert.equal(judge(IMG, {}).outcome, 'fail');
    // Skipped rules are listed, and need no facts.
    assert.equal(factNeeds(policy('    - name: b\n      mode: enforce\n      match: { namespaces: [x] }\n      requireBaseImage: {}\n'), IMG, { namespace: 'y' }).manifest, false);
    assert.equal(factNeeds(policy('    - name: b\n      mode: enforce\n      requireBaseImage: {}\n'), IMG, { namespace: 'y' }).provenance, true);
  });

  test('modes: enforce denies, warn warns, audit only records; break-glass; messages with placeholders; merge', () => {
    const rules = ['enforce', 'warn', 'audit'].map((m) => `    - name: r-${m}\n      mode: ${m}\n      message: "{{image}} in {{namespace}} breaks {{rule}} (base {{base}})"\n      imageReferences: { forbidLatest: true }\n`).join('');
    const p = policy(rules, '  breakGlass: { annotation: break-glass.image-policy.k8s.io/ticket, mode: audit }\n');
    const d = evaluate(p, facts('nginx'), { namespace: 'web' }, NOW);
    assert.equal(d.allowed, false);
    assert.deepEqual(d.results.map((r) => r.action), ['deny', 'warn', 'audit']);
    assert.equal(d.denials.length, 1);
    assert.equal(d.warnings.length, 1);
    assert.equal(d.audits.length, 1);
    assert.equal(d.denials[0], '[r-enforce] nginx: nginx in web breaks r-enforce (base unknown) (nginx has no tag, which means "latest")');
    assert.match(d.warnings[0]!, /^\[r-warn\] nginx:/);
    assert.match(d.audits[0]!, /^\[r-audit\] nginx:/);

    const bg = evaluate(p, facts('nginx'), { namespace: 'web', annotations: { 'break-glass.image-policy.k8s.io/ticket': 'INC-42' } }, NOW);
    assert.equal(bg.allowed, true);
    assert.deepEqual(bg.breakGlass, { annotation: 'break-glass.image-policy.k8s.io/ticket', value: 'INC-42' });
    assert.deepEqual(bg.results.map((r) => r.action), ['audit', 'warn', 'audit']);
    assert.match(bg.warnings[0]!, /break-glass annotation break-glass\.image-policy\.k8s\.io\/ticket=INC-42 used; not enforced: r-enforce/);
    assert.match(bg.audits[0]!, /\[break-glass break-glass\.image-policy\.k8s\.io\/ticket\]$/);
    // Other annotations do nothing.
    assert.equal(evaluate(p, facts('nginx'), { annotations: { 'other.image-policy.k8s.io/ticket': 'x' } }, NOW).allowed, false);

    const ok = evaluate(p, facts('nginx:1.25'), {}, NOW);
    const m = mergeDecisions([d, ok, d]);
    assert.equal(m.allowed, false);
    assert.equal(m.denials.length, 1);
  });
});

// ---------------------------------------------------------------------------------------------
// Gathering facts, and plinth check end to end against a real registry
// ---------------------------------------------------------------------------------------------

/** The real CLI, with no advisory database unless the test gives one. */
function plinth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runPlinth(args, { env: { PLINTH_DB: '/nonexistent/plinth-test.db', ...env } });
}

const AMD64 = { os: 'linux', architecture: 'amd64' };
const baseLayers = (v: string): FileSpec[][] => [
  [{ path: 'etc/', type: 'directory' }, debian12OsRelease, { path: 'var/lib/dpkg/status', content: dpkgEntry('libc6', `2.36-9+deb12u${v}`, 'glibc') }],
  [{ path: 'usr/', type: 'directory' }, { path: 'usr/lib.so', content: `lib ${v}` }],
];
const appLayer: FileSpec[] = [{ path: 'app/', type: 'directory' }, { path: 'app/main', content: 'app' }];

function catalogEntry(img: BuiltImage, name: string, tag: string, status: CatalogEntry['status'], created: string): CatalogEntry {
  return { name, tag, digest: img.descriptor.digest, platform: 'linux/amd64', diffIds: img.diffIds, chainIds: chainIds(img.diffIds), created, status };
}

describe('policy: gatherFacts and plinth check', () => {
  let reg: TestRegistry;
  let work: string;
  let catalogFile: string;
  let catalog: Catalog;
  let approvedBase: BuiltImage;
  let appDigest: string;
  const pol = (name: string) => path.join(work, name);

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-policy-'));
    approvedBase = await buildImage({ platform: AMD64, layers: baseLayers('3'), created: '2025-01-01T00:00:00Z' });
    const deprecatedBase = await buildImage({ platform: AMD64, layers: baseLayers('1'), created: '2024-01-01T00:00:00Z' });
    const otherBase = await buildImage({ platform: AMD64, layers: [[{ path: 'etc/alpine-release', content: '3.19.1\n' }]], created: '2024-06-01T00:00:00Z' });
    const baseName = `${reg.host}/base/debian`;
    await copyImage(approvedBase.source, await openDestination(`${baseName}:12`));
    await copyImage(otherBase.source, await openDestination(`${reg.host}/base/other:1`));

    // Built on the approved base: recognised by its layers (fingerprint), no metadata at all.
    const approvedApp = await buildImage({ platform: AMD64, layers: [...baseLayers('3'), appLayer], labels: { 'org.opencontainers.image.source': 'https://github.com/acme/app' } });
    appDigest = approvedApp.descriptor.digest;
    await copyImage(approvedApp.source, await openDestination(`${reg.host}/team/app:1.0`));
    await copyImage(approvedApp.source, await openDestination(`${reg.host}/team/app:latest`));
    // Declares its base (ko-style annotations), but that base is not in the catalog.
    const unapproved = await buildImage({
      platform: AMD64,
      layers: [[{ path: 'etc/alpine-release', content: '3.19.1\n' }], appLayer],
      annotations: { 'org.opencontainers.image.base.name': `${reg.host}/base/other:1`, 'org.opencontainers.image.base.digest': otherBase.descriptor.digest },
    });
    await copyImage(unapproved.source, await openDestination(`${reg.host}/team/unapproved:1.0`));
    // No metadata, and layers that match no known base.
    const unknown = await buildImage({ platform: AMD64, layers: [[{ path: 'bin/tool', content: 'static binary' }]] });
    await copyImage(unknown.source, await openDestination(`${reg.host}/team/unknown:1.0`));
    // On the deprecated base.
    const old = await buildImage({ platform: AMD64, layers: [...baseLayers('1'), appLayer] });
    await copyImage(old.source, await openDestination(`${reg.host}/team/old:1.0`));
    // A multi-platform image: amd64 on the approved base, arm64 on nothing known.
    const arm = await buildImage({ platform: { os: 'linux', architecture: 'arm64' }, layers: [[{ path: 'bin/arm', content: 'arm' }]] });
    await copyImage(buildIndex([approvedApp, arm]).source, await openDestination(`${reg.host}/team/multi:1.0`));

    catalog = emptyCatalog();
    catalog.bases.push(catalogEntry(approvedBase, baseName, '12', 'approved', '2025-01-01T00:00:00Z'), catalogEntry(deprecatedBase, baseName, '12.0', 'deprecated', '2024-01-01T00:00:00Z'));
    catalogFile = path.join(work, 'catalog.yaml');
    await saveCatalog(catalogFile, catalog);

    const head = 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: NAME\nspec:\n  rules:\n';
    await writeFile(pol('latest.yaml'), `${head.replace('NAME', 'no-latest')}    - name: no-latest\n      mode: enforce\n      imageReferences: { forbidLatest: true }\n`);
    await writeFile(pol('vulns.yaml'), `${head.replace('NAME', 'vulns')}    - name: vulns\n      mode: enforce\n      vulnerabilities: { severity: HIGH }\n`);
    await writeFile(pol('bad.yaml'), `${head.replace('NAME', 'bad')}    - name: x\n      mode: enforce\n      allowedBaseImages: { catalogApproved: yes }\n`);
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('only what applicable rules need: a registries policy never touches the network', async () => {
    const p = (await loadPolicy(path.join(root, 'examples', 'policies', 'registries-only.yaml'))).policy;
    // Port 1 on loopback: any connection attempt would fail and show up as an error.
    const f = await gatherFacts('127.0.0.1:1/team/app:1.0', { policy: p, catalog });
    assert.deepEqual(f.needs, { manifest: false, labels: false, provenance: false, registryCheck: false, verifyBase: false, scan: false, signatures: false });
    assert.deepEqual(f.errors, []);
    assert.equal(f.digest, null);
    assert.equal(f.reference?.name, '127.0.0.1:1/team/app');
    const d = evaluate(p, f, {}, NOW);
    assert.equal(d.allowed, false);
    // Pinning resolves the digest even then.
    const pinned = await gatherFacts(`${reg.host}/team/app:1.0`, { policy: p, resolveDigest: true });
    assert.equal(pinned.digest, appDigest);
    assert.equal(pinned.platforms.length, 0);
  });

  test('gatherFacts: provenance per platform, labels, and errors instead of exceptions', async () => {
    const p = (await loadPolicy(path.join(root, 'examples', 'policies', 'approved-bases.yaml'))).policy;
    const f = await gatherFacts(`${reg.host}/team/multi:1.0`, { policy: p, catalog, now: NOW, needs: { labels: true } });
    assert.deepEqual(f.platforms.map((x) => x.platform), ['linux/amd64', 'linux/arm64']);
    assert.equal(f.platforms[0]!.provenance?.base?.catalog?.status, 'approved');
    assert.equal(f.platforms[0]!.labels['org.opencontainers.image.source'], 'https://github.com/acme/app');
    assert.equal(f.platforms[1]!.provenance?.base, null);
    const d = evaluate(p, f, {}, NOW);
    assert.equal(d.allowed, false);
    assert.deepEqual(only(d, 'allowed-base-images').platforms, ['linux/arm64']);

    const missing = await gatherFacts(`${reg.host}/team/nope:1`, { policy: p, catalog });
    assert.equal(missing.errors[0]?.fact, 'image');
    assert.equal(missing.errors[0]?.code, 'MANIFEST_UNKNOWN');
    const md = evaluate(p, missing, {}, NOW);
    assert.equal(md.allowed, false);
    assert.ok(md.results.every((r) => r.outcome === 'error'));

    const invalid = await gatherFacts('Not A Reference', { policy: p });
    assert.equal(invalid.errors[0]?.fact, 'reference');
    assert.match(evaluate(p, invalid, {}, NOW).denials[0]!, /is not a valid image reference/);
  });

  test('gatherFacts: a deadline ends the work and becomes an error fact', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const p = (await loadPolicy(path.join(root, 'examples', 'policies', 'approved-bases.yaml'))).policy;
      const t0 = Date.now();
      const f = await gatherFacts(`127.0.0.1:${port}/team/app:1`, { policy: p, deadline: 300 });
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.equal(f.errors[0]?.fact, 'deadline');
      assert.match(f.errors[0]!.message, /deadline exceeded/);
      assert.equal(evaluate(p, f, {}, NOW).allowed, false);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const g = await gatherFacts(`127.0.0.1:${port}/team/app:2`, { policy: p, deadline: ac.signal });
      assert.equal(g.errors[0]?.fact, 'deadline');
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('gatherFacts: vulnerabilities with a real database, and without one', async () => {
    const adv = path.join(work, 'osv');
    await mkdir(adv, { recursive: true });
    const rec = {
      id: 'DEBIAN-CVE-2024-2961', aliases: ['CVE-2024-2961'], modified: '2024-05-01T00:00:00Z', summary: 'iconv overflow',
      affected: [{ package: { ecosystem: 'Debian:12', name: 'glibc' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.36-9+deb12u7' }] }] }],
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
    };
    await writeFile(path.join(adv, 'a.json'), JSON.stringify(rec));
    const dbPath = path.join(work, 'vuln.db');
    const store = openStore(dbPath);
    try {
      assert.equal((await importPaths(store, [adv])).errors.length, 0);
    } finally {
      store.close();
    }
    const p = (await loadPolicy(pol('vulns.yaml'))).policy;
    const f = await gatherFacts(`${reg.host}/team/app:1.0`, { policy: p, catalog, db: dbPath });
    assert.equal(f.scanDb, path.resolve(dbPath));
    const d = evaluate(p, f, {}, NOW);
    assert.equal(d.allowed, false);
    assert.match(d.denials[0]!, /1 vulnerability of severity HIGH or higher: DEBIAN-CVE-2024-2961 \(CRITICAL, libc6 2\.36-9\+deb12u3 → 2\.36-9\+deb12u7, from the base\)/);
    const excused = parsePolicy((await readFile(pol('vulns.yaml'), 'utf8')).replace('{ severity: HIGH }', '{ severity: HIGH, exceptions: [{ id: CVE-2024-2961, reason: tested, expires: 2025-06-30 }] }')).policy;
    assert.equal(evaluate(excused, f, {}, NOW).allowed, true);
    assert.equal(evaluate(excused, f, {}, Date.parse('2025-07-01T00:00:00Z')).allowed, false);

    const none = await gatherFacts(`${reg.host}/team/app:1.0`, { policy: p, catalog });
    assert.equal(none.errors[0]?.fact, 'scan');
    const nd = evaluate(p, none, {}, NOW);
    assert.equal(only(nd).outcome, 'error');
    assert.match(nd.denials[0]!, /no vulnerability database/);
  });

  test('plinth check: an image on an approved base is allowed (exit 0)', async () => {
    const r = await plinth(['check', `${reg.host}/team/app:1.0`, '--policy', path.join(root, 'examples', 'policies', 'approved-bases.yaml'), '--catalog', catalogFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /team\/app:1\.0: ALLOWED/);
    assert.match(r.stdout, /PASS\s+enforce\s+require-base-image: base .*\/base\/debian:12@sha256:/);
    assert.match(r.stdout, /PASS\s+enforce\s+allowed-base-images: base .* is allowed \(approved in the catalog\)/);
  });

  test('plinth check: unknown base (exit 1, Kyverno-style message), unapproved and deprecated bases', async () => {
    const policyFile = path.join(root, 'examples', 'policies', 'approved-bases.yaml');
    const unknown = await plinth(['check', `${reg.host}/team/unknown:1.0`, '--policy', policyFile, '--catalog', catalogFile]);
    assert.equal(unknown.code, 1, unknown.stdout + unknown.stderr);
    assert.match(unknown.stdout, /team\/unknown:1\.0: DENIED \(2 denied\)/);
    assert.match(unknown.stdout, /FAIL\s+enforce\s+require-base-image: Images must specify a source\/base image from which they are built\./);
    assert.match(unknown.stdout, /reason: the base image is unknown/);
    assert.match(unknown.stdout, /FAIL\s+enforce\s+allowed-base-images: This container image's base is not in the approved list or is not specified\. Only pre-approved base images may be used\. Please contact the platform team for assistance\./);

    const unapproved = await plinth(['check', `${reg.host}/team/unapproved:1.0`, '--policy', policyFile, '--catalog', catalogFile, '--format', 'json']);
    assert.equal(unapproved.code, 1, unapproved.stderr);
    const j = JSON.parse(unapproved.stdout) as { allowed: boolean; policy: { name: string; version: string }; decisions: Decision[] };
    assert.equal(j.allowed, false);
    assert.equal(j.policy.name, 'approved-bases');
    assert.match(j.policy.version, /^sha256:[0-9a-f]{64}$/);
    const [d] = j.decisions;
    assert.equal(only(d!, 'require-base-image').outcome, 'pass');
    const ab = only(d!, 'allowed-base-images');
    assert.equal(ab.outcome, 'fail');
    assert.match(ab.reason, new RegExp(`the base ${reg.host.replace(/\./g, '\\.')}/base/other:1@sha256:[0-9a-f]{12}… is not approved: it is not in the catalog`));
    // The declared base is not in the catalog: allowedBaseImages fetches it from its registry and
    // confirms its layers against the image's (a declared digest alone would only be medium).
    assert.equal((ab.evidence['base'] as { confidence: string }).confidence, 'high');

    const old = await plinth(['check', `${reg.host}/team/old:1.0`, '--policy', policyFile, '--catalog', catalogFile]);
    assert.equal(old.code, 1);
    assert.match(old.stdout, /is deprecated in the catalog; rebuild on .*\/base\/debian:12@sha256:/);
  });

  test('plinth check: latest tag, disallowed registry, several images, SARIF', async () => {
    const latest = await plinth(['check', `${reg.host}/team/app:latest`, `${reg.host}/team/app`, `${reg.host}/team/app:1.0`, '--policy', pol('latest.yaml')]);
    assert.equal(latest.code, 1, latest.stderr);
    assert.match(latest.stdout, /team\/app:latest: DENIED[\s\S]*uses the tag "latest"/);
    assert.match(latest.stdout, /team\/app: DENIED[\s\S]*has no tag, which means "latest"/);
    assert.match(latest.stdout, /team\/app:1\.0: ALLOWED/);

    const regs = await plinth(['check', `${reg.host}/team/app:1.0`, '--policy', path.join(root, 'examples', 'policies', 'registries-only.yaml'), '--format', 'sarif']);
    assert.equal(regs.code, 1, regs.stderr);
    const s = JSON.parse(regs.stdout) as { version: string; runs: Array<{ results: Array<{ ruleId: string; level: string; message: { text: string } }>; tool: { driver: { rules: Array<{ id: string }> } } }> };
    assert.equal(s.version, '2.1.0');
    assert.deepEqual(s.runs[0]!.tool.driver.rules.map((x) => x.id), ['allowed-registries']);
    assert.equal(s.runs[0]!.results.length, 1);
    assert.equal(s.runs[0]!.results[0]!.level, 'error');
    assert.match(s.runs[0]!.results[0]!.message.text, new RegExp(`${reg.host.replace(/\./g, '\\.')}/team/app is not in an allowed registry`));

    // One SARIF result per failing rule per image.
    const two = await plinth(['check', `${reg.host}/team/unknown:1.0`, `${reg.host}/team/app:1.0`, `${reg.host}/team/old:1.0`, '--policy', path.join(root, 'examples', 'policies', 'approved-bases.yaml'), '--catalog', catalogFile, '--format', 'sarif']);
    assert.equal(two.code, 1);
    const results = (JSON.parse(two.stdout) as typeof s).runs[0]!.results;
    assert.deepEqual(results.map((x) => `${x.ruleId}`), ['require-base-image', 'allowed-base-images', 'allowed-base-images']);
  });

  test('plinth check: usage and input errors exit 2', async () => {
    const img = `${reg.host}/team/app:1.0`;
    const noPolicy = await plinth(['check', img]);
    assert.equal(noPolicy.code, 2);
    assert.match(noPolicy.stderr, /required option '--policy <file>'/);
    const bad = await plinth(['check', img, '--policy', pol('bad.yaml')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml:9:\d+: spec\.rules\[0\]\.allowedBaseImages\.catalogApproved: Invalid input: expected boolean/);
    const missingPolicy = await plinth(['check', img, '--policy', pol('missing.yaml')]);
    assert.equal(missingPolicy.code, 2);
    assert.match(missingPolicy.stderr, /missing\.yaml does not exist/);
    const format = await plinth(['check', img, '--policy', pol('latest.yaml'), '--format', 'xml']);
    assert.equal(format.code, 2);
    const ref = await plinth(['check', 'Not/Valid:Ref:x', '--policy', pol('latest.yaml')]);
    assert.equal(ref.code, 2);
    const catalogMissing = await plinth(['check', img, '--policy', pol('latest.yaml'), '--catalog', pol('no-catalog.yaml')]);
    assert.equal(catalogMissing.code, 2);
    assert.match(catalogMissing.stderr, /no-catalog\.yaml does not exist/);
    const unreadable = await plinth(['check', `${reg.host}/team/does-not-exist:1`, '--policy', path.join(root, 'examples', 'policies', 'approved-bases.yaml'), '--catalog', catalogFile]);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stdout, /NOT CHECKED/);
    for (const r of [noPolicy, bad, missingPolicy, format, ref, catalogMissing, unreadable]) assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/);
    // No database: the vulnerabilities rule errors, enforce denies (exit 1), and says why.
    const nodb = await plinth(['check', img, '--policy', pol('vulns.yaml'), '--catalog', catalogFile]);
    assert.equal(nodb.code, 1, nodb.stderr);
    assert.match(nodb.stdout, /ERROR\s+enforce\s+vulns:[\s\S]*reason: no vulnerability database/);
  });
});
