import { z } from 'zod';

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

const globs = (what: string) => z.array(z.string().min(1)).min(1).describe(what);

export const MatchSchema = z
  .strictObject({
    namespaces: globs('the rule applies only in namespaces matching one of these globs').optional(),
    excludeNamespaces: globs('the rule does not apply in namespaces matching one of these globs').optional(),
    labels: z.record(z.string(), z.string()).describe('the rule applies only to workloads carrying all these labels (values are globs; "*" = any value)').optional(),
    excludeLabels: z.record(z.string(), z.string()).describe('the rule does not apply to workloads carrying all these labels (values are globs)').optional(),
    images: globs('the rule applies only to images matching one of these patterns (e.g. "ghcr.io/acme/**", "nginx:1.*")').optional(),
    excludeImages: globs('the rule does not apply to images matching one of these patterns').optional(),
  })
  .describe('Where the rule applies. Namespace and label conditions are ignored when the context has no namespace / labels (plinth check without --namespace / --label).');
export type Match = z.infer<typeof MatchSchema>;

const Confidence = z.enum(['low', 'medium', 'high']);
const Severity = z.enum(SEVERITIES, { error: () => `unknown severity (use one of ${SEVERITIES.join(', ')})` });

export const RequireBaseImageSchema = z
  .strictObject({
    declared: z.boolean().describe('the image must declare its base in its own metadata (annotations, BuildKit build info or provenance, buildpacks); a base recognised only by its layers does not count. Default false').optional(),
    requireDigest: z.boolean().describe('the base must be known by digest, not just by name (default false)').optional(),
    minConfidence: Confidence.describe('how sure Plinth must be of the base (default low: any identified base)').optional(),
  })
  .nullable()
  .describe('The image must declare (or Plinth must identify) its base image.');

export const AllowedBaseImagesSchema = z
  .strictObject({
    catalogApproved: z.boolean().describe('bases the catalog marks approved are allowed').optional(),
    images: globs('allowed bases: names, globs or digests ("docker.io/library/debian", "debian:12*", "cgr.dev/chainguard/**", "sha256:…")').optional(),
    requireBoth: z.boolean().describe('with both catalogApproved and images: the base must satisfy both (default: either)').optional(),
    deprecated: z.enum(['deny', 'warn', 'allow']).describe('a base the catalog marks deprecated: deny (default), warn (allowed, with a warning) or allow').optional(),
    supersededGraceDays: z.number().int().min(0).max(3650).describe('with catalogApproved: a base the catalog marks superseded (a newer version of its line is approved) stays allowed, with a warning, for this many days after it was superseded (default 30)').optional(),
    minConfidence: Confidence.describe('how sure Plinth must be of the base. Default: the base must be confirmed by layers (catalog or registry), since a declared name and digest can be forged; set medium to accept a declared digest that cannot be checked, low for a name alone').optional(),
  })
  .superRefine((v, ctx) => {
    if (!v.catalogApproved && !v.images) ctx.addIssue({ code: 'custom', message: 'set catalogApproved: true and/or images: [...]', path: [] });
  })
  .describe('The base must be on a list and/or approved in the catalog.');

export const AllowedRegistriesSchema = z
  .strictObject({
    registries: globs('globs over the normalised registry/repository ("ghcr.io/acme/**", "docker.io/library/*"); a pattern without "/" names a whole registry ("registry.example.com")'),
  })
  .describe('Images must come from these registries / repositories.');

export const ImageReferencesSchema = z
  .strictObject({
    requireDigest: z.boolean().describe('the reference must include a digest (name@sha256:… or name:tag@sha256:…); no tag-only references').optional(),
    forbidLatest: z.boolean().describe('no "latest" tag, written or implied (a reference without tag), unless pinned by a digest').optional(),
  })
  .superRefine((v, ctx) => {
    if (!v.requireDigest && !v.forbidLatest) ctx.addIssue({ code: 'custom', message: 'set requireDigest: true and/or forbidLatest: true', path: [] });
  })
  .describe('How images are referenced: digests over tags.');

export const BaseFreshnessSchema = z
  .strictObject({
    newestApproved: z.boolean().describe('the base must be the newest approved version of its line in the catalog').optional(),
    maxAgeDays: z.number().int().min(0).describe('the base (its catalog creation time) must not be older than this many days').optional(),
    tagNotMoved: z.boolean().describe('the tag the base was built from must still point at the same digest (asks the registry)').optional(),
  })
  .superRefine((v, ctx) => {
    if (!v.newestApproved && v.maxAgeDays === undefined && !v.tagNotMoved) ctx.addIssue({ code: 'custom', message: 'set newestApproved: true, maxAgeDays: N and/or tagNotMoved: true', path: [] });
  })
  .describe('The base must be up to date.');

export const VulnerabilityExceptionSchema = z.strictObject({
  id: z.string().min(1).describe('vulnerability id (CVE-…, DSA-…, GHSA-…); aliases match too'),
  images: globs('only for images matching these patterns (default: every image)').optional(),
  reason: z.string().min(1).describe('why the finding is accepted (shown in reports)'),
  expires: z.string().describe('YYYY-MM-DD (valid through that day, UTC) or an RFC 3339 time; an expired exception no longer excuses').optional(),
});
export type VulnerabilityException = z.infer<typeof VulnerabilityExceptionSchema>;

export const VulnerabilitiesSchema = z
  .strictObject({
    severity: Severity.describe('deny findings at or above this severity'),
    ignoreUnfixed: z.boolean().describe('only findings that have a fixed version count').optional(),
    origin: z.enum(['any', 'base', 'image']).describe('only findings from the base image, or only those the image added (default any)').optional(),
    exceptions: z.array(VulnerabilityExceptionSchema).optional(),
  })
  .describe('Deny known vulnerabilities at or above a severity (needs a vulnerability database).');

export const RequiredLabelsSchema = z
  .strictObject({
    labels: z
      .array(
        z.strictObject({
          key: z.string().min(1),
          value: z.string().min(1).describe('glob the value must match (default: any non-empty value)').optional(),
        }),
      )
      .min(1),
    annotations: z.boolean().describe('manifest and index annotations with the same key count too (default true)').optional(),
  })
  .describe('The image must carry these labels (config labels, or manifest annotations).');

const KeylessIdentitySchema = z
  .strictObject({
    identity: z.string().min(1).describe('the exact subject alternative name of the signing certificate (e.g. https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main, or an email)').optional(),
    identityRegExp: z.string().min(1).describe('a regular expression the subject alternative name must match').optional(),
    issuer: z.string().min(1).describe('the exact OIDC issuer recorded in the certificate (e.g. https://token.actions.githubusercontent.com)').optional(),
    issuerRegExp: z.string().min(1).describe('a regular expression the issuer must match').optional(),
  })
  .superRefine((v, ctx) => {
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
  });

const NotaryV1Schema = z
  .strictObject({
    server: z.url({ protocol: /^https?$/ }).describe('the notary server (default: notary.docker.io for Docker Hub, else https://REGISTRY, as Docker)').optional(),
    rootKeys: z.array(z.string().regex(/^(sha256:)?[0-9a-f]{64}$/, 'a root key ID is 64 hex digits, sha256: optional')).min(1).describe('root key IDs (as notary key list or docker trust inspect show them): the repository\'s root must be signed by one; without them the root is trusted on first use').optional(),
    roles: z.array(z.string().regex(/^targets(\/[A-Za-z0-9_.-]+)*$/, 'a role is targets or targets/NAME')).min(1).describe('roles that may sign the tag (e.g. targets/releases); default: any role of the trusted metadata').optional(),
    trustDir: z.string().min(1).describe('where trusted metadata is kept between checks (rollback protection), relative to the policy file; default: nothing is kept (each check trusts the root on first use unless rootKeys pins it)').optional(),
  })
  .describe('Docker Content Trust (Notary v1 / TUF): the tag\'s signed target, in metadata verified from the root down, must be the manifest the registry serves');

const NotationSchema = z
  .strictObject({
    trustPolicy: z.string().min(1).describe('notation\'s trustpolicy.json (version 1.0), relative to the policy file'),
    trustStore: z.string().min(1).describe('notation\'s trust store directory (holding x509/ca/NAME/*.pem …), relative to the policy file'),
  })
  .describe('Notary Project signatures (notation, JWS or COSE referrers), verified with notation\'s trust policy and trust store');

export const SignaturesSchema = z
  .strictObject({
    notaryV1: NotaryV1Schema.optional(),
    notation: NotationSchema.optional(),
    keys: z
      .array(z.string().min(1))
      .min(1)
      .describe('public keys that may sign: inline PEM (-----BEGIN PUBLIC KEY-----…) or a PEM file, relative to the policy file (ECDSA P-256/P-384, Ed25519, RSA)')
      .optional(),
    keyless: z.array(KeylessIdentitySchema).min(1).describe('keyless signers (Fulcio certificates): each an identity and an OIDC issuer, exact or by regular expression').optional(),
    trustedRoot: z.string().min(1).describe('keyless: trusted_root.json, relative to the policy file (default: the Sigstore public-good root built into Plinth)').optional(),
    ignoreSct: z.boolean().describe('keyless: do not require a certificate-transparency SCT (a private CA without a CT log)').optional(),
    count: z.number().int().min(1).describe('m-of-n: the image must be signed by at least this many distinct signers of the lists (keys and keyless identities; default 1)').optional(),
    annotations: z.record(z.string(), z.string()).describe('annotations the signed payload must carry (cosign sign -a key=value)').optional(),
    attestations: z
      .array(
        z.strictObject({
          type: z.string().min(1).describe('predicate type: slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, link, custom, or a URI'),
          keys: z.array(z.string().min(1)).min(1).describe('keys that may sign this attestation (default: the rule\'s keys and keyless signers)').optional(),
        }),
      )
      .describe('attestations the image must carry, each verified with a key or a keyless signer')
      .optional(),
  })
  .superRefine((v, ctx) => {
    if (!v.keys && !v.keyless && !v.notaryV1 && !v.notation) ctx.addIssue({ code: 'custom', message: 'list keys and/or keyless signers (or notaryV1, notation)', path: [] });
    const n = (v.keys?.length ?? 0) + (v.keyless?.length ?? 0) + (v.notaryV1 ? 1 : 0) + (v.notation ? 1 : 0);
    if (v.count !== undefined && v.count > n) ctx.addIssue({ code: 'custom', message: `count is ${v.count}, but only ${n} signer(s) are listed`, path: ['count'] });
  })
  .describe('The image (its manifest or index digest) must be signed: cosign-compatible (a Sigstore bundle referrer or a legacy .sig signature by the listed keys, or a keyless bundle by the listed identities), Docker Content Trust (notaryV1) or notation; optionally cosign attestations too.');

const KUBESEC_RULE_IDS = [
  'HostNetwork', 'HostPID', 'HostIPC', 'ReadOnlyRootFilesystem', 'RunAsNonRoot', 'RunAsUser', 'RunAsGroup', 'Privileged', 'CapSysAdmin', 'CapDropAny', 'CapDropAll',
  'DockerSock', 'ProcMount', 'RequestsCPU', 'LimitsCPU', 'RequestsMemory', 'LimitsMemory', 'ServiceAccountName', 'HostAliases', 'SeccompAny', 'SeccompUnconfined',
  'ApparmorAny', 'ApparmorUnconfined', 'VolumeClaimAccessModeReadWriteOnce', 'VolumeClaimRequestsStorage', 'AllowPrivilegeEscalation', 'AutomountServiceAccountToken',
  'HostUsers', 'SecretsAsEnvironmentVariables', 'BindingsToSystemAnonymous',
] as const;

export const WorkloadSecuritySchema = z
  .strictObject({
    minScore: z.number().int().min(-1000).max(1000).describe('the workload\'s kubesec score must be at least this').optional(),
    forbid: z.array(z.enum(KUBESEC_RULE_IDS, { error: () => `unknown kubesec rule (use one of ${KUBESEC_RULE_IDS.join(', ')})` })).min(1).describe('kubesec rule IDs the workload must not match (e.g. Privileged, HostNetwork, HostPID)').optional(),
    ruleset: z.enum(['latest', '2.14']).describe('kubesec rule set: latest (default, kubesec main: 30 rules) or 2.14 (kubesec v2.14.2)').optional(),
  })
  .superRefine((v, ctx) => {
    if (v.minScore === undefined && !v.forbid) ctx.addIssue({ code: 'custom', message: 'set minScore: N and/or forbid: [rule IDs]', path: [] });
  })
  .describe('The workload (the pod spec of a Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob…) must reach a kubesec score and match none of the forbidden kubesec rules. Evaluated by plinth check --manifest, plinth lint and the admission webhook; images checked without a workload skip it.');

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

export const RuleSchema = z
  .strictObject({
    name: z.string().regex(RULE_NAME, 'a rule name is 1-63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit').describe('unique within the policy; shown in every decision'),
    mode: z.enum(MODES).describe('enforce: a failure denies; warn: a failure is a warning; audit: a failure is only recorded'),
    message: z.string().min(1).describe('what the user is told when the rule fails (placeholders: {{image}}, {{rule}}, {{namespace}}, {{base}}); default: a message per kind').optional(),
    match: MatchSchema.optional(),
    requireBaseImage: RULE_KINDS.requireBaseImage.optional(),
    allowedBaseImages: RULE_KINDS.allowedBaseImages.optional(),
    allowedRegistries: RULE_KINDS.allowedRegistries.optional(),
    imageReferences: RULE_KINDS.imageReferences.optional(),
    baseFreshness: RULE_KINDS.baseFreshness.optional(),
    vulnerabilities: RULE_KINDS.vulnerabilities.optional(),
    requiredLabels: RULE_KINDS.requiredLabels.optional(),
    signatures: RULE_KINDS.signatures.optional(),
    workloadSecurity: RULE_KINDS.workloadSecurity.optional(),
  })
  .superRefine((r, ctx) => {
    const kinds = RULE_KIND_NAMES.filter((k) => (r as Record<string, unknown>)[k] !== undefined);
    if (kinds.length === 0) ctx.addIssue({ code: 'custom', message: `a rule needs one rule kind: ${RULE_KIND_NAMES.join(', ')}`, path: [] });
    else if (kinds.length > 1) ctx.addIssue({ code: 'custom', message: `a rule has exactly one rule kind, this one has ${kinds.join(' and ')}: split it into ${kinds.length} rules`, path: [kinds[1]!] });
  }, { when: (payload) => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value) })
  .describe('One rule: name, mode, optional message and match, and exactly one rule kind.');
export type PolicyRule = z.infer<typeof RuleSchema>;

export const PolicySchema = z
  .strictObject({
    $schema: z.string().optional(),
    apiVersion: z.literal(POLICY_API_VERSION),
    kind: z.literal(POLICY_KIND),
    metadata: z.strictObject({
      name: z.string().min(1),
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    }),
    spec: z.strictObject({
      failurePolicy: z.enum(['closed', 'open']).describe('closed (default): a rule that cannot be evaluated (registry unreachable, no vulnerability database, deadline) counts as failed; open: it only warns').optional(),
      pinDigests: z.boolean().describe('admission webhook: rewrite image tags to the digests that were checked (mutation opt-in)').optional(),
      breakGlass: z
        .strictObject({
          annotation: z.string().min(1).describe('pod annotation that turns enforce failures into audit records, e.g. break-glass.image-policy.k8s.io/ticket (the ImagePolicyWebhook only forwards *.image-policy.k8s.io/* annotations)'),
          mode: z.literal('audit'),
        })
        .optional(),
      rules: z.array(RuleSchema).min(1),
    }),
  })
  .describe('A Plinth image policy (plinth check, admission webhook).');
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
