import type { LintSeverity, RuleInfo } from './types.js';
import { kubesecRules, type KubesecRuleset } from './kubesec.js';

/**
 * Every rule `plinth lint` can report: hadolint's IDs where the meaning is hadolint's, kubesec's
 * IDs for Kubernetes objects, and Plinth's own PL… rules (docs/lint.md).
 */
const HADOLINT = (id: string) => `https://github.com/hadolint/hadolint/wiki/${id}`;
const PLINTH = (id: string) => `https://github.com/plinth-dev/plinth/blob/main/docs/lint.md#${id.toLowerCase()}`;

function h(id: string, name: string, severity: LintSeverity, description: string): RuleInfo {
  return { id, name, severity, description, helpUri: HADOLINT(id), source: 'hadolint' };
}
function p(id: string, name: string, severity: LintSeverity, description: string): RuleInfo {
  return { id, name, severity, description, helpUri: PLINTH(id), source: 'plinth' };
}

export const DOCKERFILE_RULES: readonly RuleInfo[] = [
  h('DL3000', 'absolute-workdir', 'error', 'Use absolute WORKDIR'),
  h('DL3002', 'last-user-not-root', 'warning', 'Last USER should not be root.'),
  h('DL3004', 'no-sudo', 'error', 'Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root'),
  h('DL3006', 'tag-image-version', 'warning', 'Always tag the version of an image explicitly'),
  h('DL3007', 'no-latest', 'warning', 'Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag'),
  h('DL3008', 'pin-apt-versions', 'warning', 'Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`'),
  h('DL3018', 'pin-apk-versions', 'warning', 'Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`'),
  h('DL3020', 'copy-not-add', 'error', 'Use COPY instead of ADD for files and folders'),
  h('DL3026', 'allowed-registry', 'error', 'Use only an allowed registry in the FROM image'),
  h('DL3029', 'no-from-platform', 'warning', 'Do not use --platform flag with FROM'),
  h('DL3061', 'instruction-order', 'error', 'Invalid instruction order. Dockerfile must begin with FROM, ARG or comment'),
  h('DL4006', 'pipefail', 'warning', 'Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check'),
  p('PL001', 'base-not-approved', 'error', 'The base image is not approved in the catalog'),
  p('PL002', 'base-deprecated', 'warning', 'The base image is deprecated or superseded in the catalog (the finding names the successor)'),
  p('PL003', 'base-not-pinned', 'warning', 'The base image is not pinned by digest (plinth lint --fix pins it)'),
  p('PL004', 'curl-pipe-shell', 'error', 'A download (curl or wget) is piped into a shell: what runs is whatever the server sends'),
  p('PL005', 'add-url-checksum', 'warning', 'ADD of a URL without --checksum: the download is not verified'),
  p('PL006', 'secret-in-env', 'warning', 'ENV or ARG named like a secret: build arguments and environment stay in the image history and config'),
  p('PL007', 'final-stage-no-user', 'warning', 'The final stage sets no USER: the container runs as the base image\'s user (often root)'),
  p('PL008', 'final-stage-distroless', 'info', 'The final stage runs a shell or a package manager although the base line has a distroless variant in the catalog'),
  p('PL009', 'unknown-instruction', 'error', 'Unknown Dockerfile instruction'),
];

export const MANIFEST_RULES: readonly RuleInfo[] = [
  p('PL101', 'image-no-digest', 'warning', 'A container image is not referenced by digest'),
  p('PL102', 'image-registry-not-allowed', 'error', 'A container image comes from a registry the policy does not allow'),
  p('PL103', 'image-latest', 'warning', 'A container image uses the latest tag (written or implied)'),
  p('PL104', 'workload-score', 'error', 'The workload\'s kubesec score is below the policy\'s workloadSecurity minScore'),
  p('PL190', 'manifest-invalid', 'error', 'The document is not a valid Kubernetes object (YAML error, too deep, too many aliases)'),
];

/** kubesec rules as lint rules: negative points are errors (-7 and below) or warnings, positive ones advice. */
export function kubesecRuleInfos(ruleset: KubesecRuleset = 'latest'): RuleInfo[] {
  return kubesecRules(ruleset).map((r) => ({
    id: r.id,
    name: r.id,
    severity: kubesecSeverity(r.points),
    description: `${r.reason} (${r.points > 0 ? '+' : ''}${r.points} points; selector ${r.selector})`,
    helpUri: 'https://kubesec.io/basics/',
    source: 'kubesec' as const,
  }));
}

export function kubesecSeverity(points: number): LintSeverity {
  return points <= -7 ? 'error' : points < 0 ? 'warning' : 'info';
}

export function ruleInfo(id: string, ruleset: KubesecRuleset = 'latest'): RuleInfo | undefined {
  return DOCKERFILE_RULES.find((r) => r.id === id) ?? MANIFEST_RULES.find((r) => r.id === id) ?? kubesecRuleInfos(ruleset).find((r) => r.id === id);
}

export function allRuleInfos(ruleset: KubesecRuleset = 'latest'): RuleInfo[] {
  return [...DOCKERFILE_RULES, ...MANIFEST_RULES, ...kubesecRuleInfos(ruleset)];
}
