import * as z from 'zod/mini';
import { described } from '../util/zod.js';

/**
 * The policy file: `apiVersion: plinth.dev/v1alpha1`, `kind: ImagePolicy`. A policy is a list of
 * rules; each rule has a name, a mode, an optional message and match/exclude conditions, and
 * exactly ONE rule-kind key holding that kind's settings:
 *
 *   - name: approved-bases
 *     mode: enforce
 *     allowedBaseImages: { catalogApproved: true }
 *
 * A new kind (e.g. `signatures`) is one more entry in RULE_KINDS (the compiler then asks for its
 * evaluator and the facts it needs); nothing else in the file format changes.
 */
export const POLICY_API_VERSION = 'plinth.dev/v1alpha1';
export const POLICY_KIND = 'ImagePolicy';

export const MODES = ['enforce', 'audit', 'warn'] as const;
export type RuleMode = (typeof MODES)[number];

/** Severities, lowest first (the same order as src/vuln/severity.ts). */
export const SEVERITIES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;

const str1 = () => z.string().check(z.minLength(1));
const int = () => z.number().check(z.int());
const globs = (what: string) => described(z.array(str1()).check(z.minLength(1)), what);

export const MatchSchema = described(
  z.strictObject({
    namespaces: z.optional(globs('the rule applies only in namespaces matching one of these globs')),
    excludeNamespaces: z.optional(globs('the rule does not apply in namespaces matching one of these globs')),
    labels: z.optional(described(z.record(z.string(), z.string()), 'the rule applies only to workloads carrying all these labels (values are globs; "*" = any value)')),
    excludeLabels: z.optional(described(z.record(z.string(), z.string()), 'the rule does not apply to workloads carrying all these labels (values are globs)')),
    images: z.optional(globs('the rule applies only to images matching one of these patterns (e.g. "ghcr.io/acme/**", "nginx:1.*")')),
    excludeImages: z.optional(globs('the rule does not apply to images matching one of these patterns')),
  }),
  'Where the rule applies. Namespace and label conditions are ignored when the context has no namespace / labels (plinth check without --namespace / --label).',
);
export type Match = z.infer<typeof MatchSchema>;

const Confidence = z.enum(['low', 'medium', 'high']);
const Severity = z.enum(SEVERITIES, { error: () => `unknown severity (use one of ${SEVERITIES.join(', ')})` });

export const RequireBaseImageSchema = described(
  z.nullable(
    z.strictObject({
      declared: z.optional(described(z.boolean(), 'the image must declare its base in its own metadata (annotations, BuildKit build info or provenance, buildpacks); a base recognised only by its layers does not count. Default false')),
      requireDigest: z.optional(described(z.boolean(), 'the base must be known by digest, not just by name (default false)')),
      minConfidence: z.optional(described(Confidence, 'how sure Plinth must be of the base (default low: any identified base)')),
    }),
  ),
  'The image must declare (or Plinth must identify) its base image.',
);

export const AllowedBaseImagesSchema = described(
  z
    .strictObject({
      catalogApproved: z.optional(described(z.boolean(), 'bases the catalog marks approved are allowed')),
      images: z.optional(globs('allowed bases: names, globs or digests ("docker.io/library/debian", "debian:12*", "cgr.dev/chainguard/**", "sha256:\u2026")')),
      requireBoth: z.optional(described(z.boolean(), 'with both catalogApproved and images: the base must satisfy both (default: either)')),
      deprecated: z.optional(described(z.enum(['deny', 'warn', 'allow']), 'a base the catalog marks deprecated: deny (default), warn (allowed, with a warning) or allow')),
      supersededGraceDays: z.optional(described(int().check(z.gte(0), z.lte(3650)), 'with catalogApproved: a base the catalog marks superseded (a newer version of its line is approved) stays allowed, with a warning, for this many days after it was superseded (default 30)')),
      minConfidence: z.optional(described(Confidence, 'how sure Plinth must be of the base. Default: the base must be confirmed by layers (catalog or registry), since a declared name and digest can be forged; set medium to accept a declared digest that cannot be checked, low for a name alone')),
    })
    .check(
      z.superRefine((v, ctx) => {
        if (!v.catalogApproved && !v.images) ctx.addIssue({ code: 'custom', message: 'set catalogApproved: true and/or images: [...]', path: [] });
      }),
    ),
  'The base must be on a list and/or approved in the catalog.',
);

export const AllowedRegistriesSchema = described(
  z.strictObject({
    registries: globs('globs over the normalised registry/repository ("ghcr.io/acme/**", "docker.io/library/*"); a pattern without "/" names a whole registry ("registry.example.com")'),
  }),
  'Images must come from these registries / repositories.',
);

export const ImageReferencesSchema = described(
  z
    .strictObject({
      requireDigest: z.optional(described(z.boolean(), 'the reference must include a digest (name@sha256:\u2026 or name:tag@sha256:\u2026); no tag-only references')),
      forbidLatest: z.optional(described(z.boolean(), 'no "latest" tag, written or implied (a reference without tag), unless pinned by a digest')),
    })
    .check(
      z.superRefine((v, ctx) => {
        if (!v.requireDigest && !v.forbidLatest) ctx.addIssue({ code: 'custom', message: 'set requireDigest: true and/or forbidLatest: true', path: [] });
      }),
    ),
  'How images are referenced: digests over tags.',
);

export const BaseFreshnessSchema = described(
  z
    .strictObject({
      newestApproved: z.optional(described(z.boolean(), 'the base must be the newest approved version of its line in the catalog')),
      maxAgeDays: z.optional(described(int().check(z.gte(0)), 'the base (its catalog creation time) must not be older than this many days')),
      tagNotMoved: z.optional(described(z.boolean(), 'the tag the base was built from must still point at the same digest (asks the registry)')),
    })
    .check(
      z.superRefine((v, ctx) => {
        if (!v.newestApproved && v.maxAgeDays === undefined && !v.tagNotMoved) ctx.addIssue({ code: 'custom', message: 'set newestApproved: true, maxAgeDays: N and/or tagNotMoved: true', path: [] });
      }),
    ),
  'The base must be up to date.',
);

export const VulnerabilityExceptionSchema = z.strictObject({
  id: described(str1(), 'vulnerability id (CVE-\u2026, DSA-\u2026, GHSA-\u2026); aliases match too'),
  images: z.optional(globs('only for images matching these patterns (default: every image)')),
  reason: described(str1(), 'why the finding is accepted (shown in reports)'),
  expires: z.optional(described(z.string(), 'YYYY-MM-DD (valid through that day, UTC) or an RFC 3339 time; an expired exception no longer excuses')),
});
export type VulnerabilityException = z.infer<typeof VulnerabilityExceptionSchema>;

export const VulnerabilitiesSchema = described(
  z.strictObject({
    severity: described(Severity, 'deny findings at or above this severity'),
    ignoreUnfixed: z.optional(described(z.boolean(), 'only findings that have a fixed version count')),
    origin: z.optional(described(z.enum(['any', 'base', 'image']), 'only findings from the base image, or only those the image added (default any)')),
    exceptions: z.optional(z.array(VulnerabilityExceptionSchema)),
  }),
  'Deny known vulnerabilities at or above a severity (needs a vulnerability database).',
);

export const RequiredLabelsSchema = described(
  z.strictObject({
    labels: z
      .array(
        z.strictObject({
          key: str1(),
          value: z.optional(described(str1(), 'glob the value must match (default: any non-empty value)')),
        }),
      )
      .check(z.minLength(1)),
    annotations: z.optional(described(z.boolean(), 'manifest and index annotations with the same key count too (default true)')),
  }),
  'The image must carry these labels (config labels, or manifest annotations).',
);

const KeylessIdentitySchema = z
  .strictObject({
    identity: z.optional(described(str1(), 'the exact subject alternative name of the signing certificate (e.g. https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main, or an email)')),
    identityRegExp: z.optional(described(str1(), 'a regular expression the subject alternative name must match')),
    issuer: z.optional(described(str1(), 'the exact OIDC issuer recorded in the certificate (e.g. https://token.actions.githubusercontent.com)')),
    issuerRegExp: z.optional(described(str1(), 'a regular expression the issuer must match')),
  })
  .check(
    z.superRefine((v, ctx) => {
      if ((v.identity === undefined) === (v.identityRegExp === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of identity and identityRegExp', path: [] });
      if ((v.issuer === undefined) === (v.issuerRegExp === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of issuer and issuerRegExp', path: [] });
      for (const k of ['identityRegExp', 'issuerRegExp'] as const) {
        const re = v[k];
        if (re === undefined) continue;
        try {
          new RegExp(re);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(e as Error).message}`, path: [k] });
        }
      }
    }),
  );

const NotaryV1Schema = described(
  z.strictObject({
    server: z.optional(described(z.url({ protocol: /^https?$/ }), 'the notary server (default: notary.docker.io for Docker Hub, else https://REGISTRY, as Docker)')),
    rootKeys: z.optional(described(z.array(z.string().check(z.regex(/^(sha256:)?[0-9a-f]{64}$/, 'a root key ID is 64 hex digits, sha256: optional'))).check(z.minLength(1)), 'root key IDs (as notary key list or docker trust inspect show them): the repository\'s root must be signed by one; without them the root is trusted on first use')),
    roles: z.optional(described(z.array(z.string().check(z.regex(/^targets(\/[A-Za-z0-9_.-]+)*$/, 'a role is targets or targets/NAME'))).check(z.minLength(1)), 'roles that may sign the tag (e.g. targets/releases); default: any role of the trusted metadata')),
    trustDir: z.optional(described(str1(), 'where trusted metadata is kept between checks (rollback protection), relative to the policy file; default: nothing is kept (each check trusts the root on first use unless rootKeys pins it)')),
  }),
  'Docker Content Trust (Notary v1 / TUF): the tag\'s signed target, in metadata verified from the root down, must be the manifest the registry serves',
);

const NotationSchema = described(
  z.strictObject({
    trustPolicy: described(str1(), 'notation\'s trustpolicy.json (version 1.0), relative to the policy file'),
    trustStore: described(str1(), 'notation\'s trust store directory (holding x509/ca/NAME/*.pem \u2026), relative to the policy file'),
  }),
  'Notary Project signatures (notation, JWS or COSE referrers), verified with notation\'s trust policy and trust store',
);

export const SignaturesSchema = described(
  z
    .strictObject({
      notaryV1: z.optional(NotaryV1Schema),
      notation: z.optional(NotationSchema),
      keys: z.optional(described(z.array(str1()).check(z.minLength(1)), 'public keys that may sign: inline PEM (-----BEGIN PUBLIC KEY-----\u2026) or a PEM file, relative to the policy file (ECDSA P-256/P-384, Ed25519, RSA)')),
      keyless: z.optional(described(z.array(KeylessIdentitySchema).check(z.minLength(1)), 'keyless signers (Fulcio certificates): each an identity and an OIDC issuer, exact or by regular expression')),
      trustedRoot: z.optional(described(str1(), 'keyless: trusted_root.json, relative to the policy file (default: the Sigstore public-good root built into Plinth)')),
      ignoreSct: z.optional(described(z.boolean(), 'keyless: do not require a certificate-transparency SCT (a private CA without a CT log)')),
      count: z.optional(described(int().check(z.gte(1)), 'm-of-n: the image must be signed by at least this many distinct signers of the lists (keys and keyless identities; default 1)')),
      annotations: z.optional(described(z.record(z.string(), z.string()), 'annotations the signed payload must carry (cosign sign -a key=value)')),
      attestations: z.optional(
        described(
          z.array(
            z.strictObject({
              type: described(str1(), 'predicate type: slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, link, custom, or a URI'),
              keys: z.optional(described(z.array(str1()).check(z.minLength(1)), 'keys that may sign this attestation (default: the rule\'s keys and keyless signers)')),
            }),
          ),
          'attestations the image must carry, each verified with a key or a keyless signer',
        ),
      ),
    })
    .check(
      z.superRefine((v, ctx) => {
        if (!v.keys && !v.keyless && !v.notaryV1 && !v.notation) ctx.addIssue({ code: 'custom', message: 'list keys and/or keyless signers (or notaryV1, notation)', path: [] });
        const n = (v.keys?.length ?? 0) + (v.keyless?.length ?? 0) + (v.notaryV1 ? 1 : 0) + (v.notation ? 1 : 0);
        if (v.count !== undefined && v.count > n) ctx.addIssue({ code: 'custom', message: `count is ${v.count}, but only ${n} signer(s) are listed`, path: ['count'] });
      }),
    ),
  'The image (its manifest or index digest) must be signed: cosign-compatible (a Sigstore bundle referrer or a legacy .sig signature by the listed keys, or a keyless bundle by the listed identities), Docker Content Trust (notaryV1) or notation; optionally cosign attestations too.',
);

const KUBESEC_RULE_IDS = [
  'HostNetwork', 'HostPID', 'HostIPC', 'ReadOnlyRootFilesystem', 'RunAsNonRoot', 'RunAsUser', 'RunAsGroup', 'Privileged', 'CapSysAdmin', 'CapDropAny', 'CapDropAll',
  'DockerSock', 'ProcMount', 'RequestsCPU', 'LimitsCPU', 'RequestsMemory', 'LimitsMemory', 'ServiceAccountName', 'HostAliases', 'SeccompAny', 'SeccompUnconfined',
  'ApparmorAny', 'ApparmorUnconfined', 'VolumeClaimAccessModeReadWriteOnce', 'VolumeClaimRequestsStorage', 'AllowPrivilegeEscalation', 'AutomountServiceAccountToken',
  'HostUsers', 'SecretsAsEnvironmentVariables', 'BindingsToSystemAnonymous',
] as const;

export const WorkloadSecuritySchema = described(
  z
    .strictObject({
      minScore: z.optional(described(int().check(z.gte(-1000), z.lte(1000)), 'the workload\'s kubesec score must be at least this')),
      forbid: z.optional(described(z.array(z.enum(KUBESEC_RULE_IDS, { error: () => `unknown kubesec rule (use one of ${KUBESEC_RULE_IDS.join(', ')})` })).check(z.minLength(1)), 'kubesec rule IDs the workload must not match (e.g. Privileged, HostNetwork, HostPID)')),
      ruleset: z.optional(described(z.enum(['latest', '2.14']), 'kubesec rule set: latest (default, kubesec main: 30 rules) or 2.14 (kubesec v2.14.2)')),
    })
    .check(
      z.superRefine((v, ctx) => {
        if (v.minScore === undefined && !v.forbid) ctx.addIssue({ code: 'custom', message: 'set minScore: N and/or forbid: [rule IDs]', path: [] });
      }),
    ),
  'The workload (the pod spec of a Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob\u2026) must reach a kubesec score and match none of the forbidden kubesec rules. Evaluated by plinth check --manifest, plinth lint and the admission webhook; images checked without a workload skip it.',
);

/** Every rule kind: the key in a rule, and the schema of its settings. */
export const RULE_KINDS = {
  requireBaseImage: RequireBaseImageSchema,
  allowedBaseImages: AllowedBaseImagesSchema,
  allowedRegistries: AllowedRegistriesSchema,
  imageReferences: ImageReferencesSchema,
  baseFreshness: BaseFreshnessSchema,
  vulnerabilities: VulnerabilitiesSchema,
  requiredLabels: RequiredLabelsSchema,
  signatures: SignaturesSchema,
  workloadSecurity: WorkloadSecuritySchema,
} as const;
export type RuleKind = keyof typeof RULE_KINDS;
export const RULE_KIND_NAMES = Object.keys(RULE_KINDS) as RuleKind[];
export type RuleSettings<K extends RuleKind> = z.infer<(typeof RULE_KINDS)[K]>;

export const RULE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

export const RuleSchema = described(
  z
    .strictObject({
      name: described(z.string().check(z.regex(RULE_NAME, 'a rule name is 1-63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit')), 'unique within the policy; shown in every decision'),
      mode: described(z.enum(MODES), 'enforce: a failure denies; warn: a failure is a warning; audit: a failure is only recorded'),
      message: z.optional(described(str1(), 'what the user is told when the rule fails (placeholders: {{image}}, {{rule}}, {{namespace}}, {{base}}); default: a message per kind')),
      match: z.optional(MatchSchema),
      requireBaseImage: z.optional(RULE_KINDS.requireBaseImage),
      allowedBaseImages: z.optional(RULE_KINDS.allowedBaseImages),
      allowedRegistries: z.optional(RULE_KINDS.allowedRegistries),
      imageReferences: z.optional(RULE_KINDS.imageReferences),
      baseFreshness: z.optional(RULE_KINDS.baseFreshness),
      vulnerabilities: z.optional(RULE_KINDS.vulnerabilities),
      requiredLabels: z.optional(RULE_KINDS.requiredLabels),
      signatures: z.optional(RULE_KINDS.signatures),
      workloadSecurity: z.optional(RULE_KINDS.workloadSecurity),
    })
    .check(
      z.superRefine(
        (r, ctx) => {
          const kinds = RULE_KIND_NAMES.filter((k) => (r as Record<string, unknown>)[k] !== undefined);
          if (kinds.length === 0) ctx.addIssue({ code: 'custom', message: `a rule needs one rule kind: ${RULE_KIND_NAMES.join(', ')}`, path: [] });
          else if (kinds.length > 1) ctx.addIssue({ code: 'custom', message: `a rule has exactly one rule kind, this one has ${kinds.join(' and ')}: split it into ${kinds.length} rules`, path: [kinds[1]!] });
        },
        { when: (payload) => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value) },
      ),
    ),
  'One rule: name, mode, optional message and match, and exactly one rule kind.',
);
export type PolicyRule = z.infer<typeof RuleSchema>;

export const PolicySchema = described(
  z.strictObject({
    $schema: z.optional(z.string()),
    apiVersion: z.literal(POLICY_API_VERSION),
    kind: z.literal(POLICY_KIND),
    metadata: z.strictObject({
      name: str1(),
      labels: z.optional(z.record(z.string(), z.string())),
      annotations: z.optional(z.record(z.string(), z.string())),
    }),
    spec: z.strictObject({
      failurePolicy: z.optional(described(z.enum(['closed', 'open']), 'closed (default): a rule that cannot be evaluated (registry unreachable, no vulnerability database, deadline) counts as failed; open: it only warns')),
      pinDigests: z.optional(described(z.boolean(), 'admission webhook: rewrite image tags to the digests that were checked (mutation opt-in)')),
      breakGlass: z.optional(
        z.strictObject({
          annotation: described(str1(), 'pod annotation that turns enforce failures into audit records, e.g. break-glass.image-policy.k8s.io/ticket (the ImagePolicyWebhook only forwards *.image-policy.k8s.io/* annotations)'),
          mode: z.literal('audit'),
        }),
      ),
      rules: z.array(RuleSchema).check(z.minLength(1)),
    }),
  }),
  'A Plinth image policy (plinth check, admission webhook).',
);
export type ImagePolicy = z.infer<typeof PolicySchema>;

/** The kind of a (validated) rule: the one rule-kind key it has. */
export function ruleKind(rule: PolicyRule): RuleKind {
  const k = RULE_KIND_NAMES.find((n) => rule[n] !== undefined);
  if (!k) throw new Error(`rule ${rule.name} has no rule kind`);
  return k;
}

/** The settings of a rule's kind (`{}` for `requireBaseImage:` with no settings). */
export function ruleSettings<K extends RuleKind>(rule: PolicyRule, kind: K): NonNullable<RuleSettings<K>> {
  return ((rule as Record<string, unknown>)[kind] ?? {}) as NonNullable<RuleSettings<K>>;
}

/** JSON Schema of the policy file (draft 2020-12), for editors and review. */
export function policyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PolicySchema, {
    io: 'input',
    target: 'draft-2020-12',
    override: (ctx) => {
      if (ctx.zodSchema === RuleSchema) {
        // What the refinement checks, for editors: exactly one rule-kind key.
        ctx.jsonSchema.oneOf = RULE_KIND_NAMES.map((k) => ({ required: [k] }));
      }
    },
  }) as Record<string, unknown>;
  return { $id: 'https://plinth.dev/schemas/policy.schema.json', title: 'Plinth ImagePolicy', ...schema };
}
