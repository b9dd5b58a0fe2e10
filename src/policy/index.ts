/** The policy engine: schema, loading, facts, evaluation. The webhook and `plinth check` sit on top. */
export * from './schema.js';
export { loadPolicy, parsePolicy, expiryTime, POLICY_MAX_BYTES, PLACEHOLDERS, type LoadedPolicy } from './load.js';
export { gatherFacts, factNeeds, applicableKinds, type ImageFacts, type PlatformFacts, type FactNeeds, type FactError, type FactKind, type GatherOptions } from './facts.js';
export { evaluate, mergeDecisions, resultLine, type Decision, type RuleResult, type Action, type Outcome } from './evaluate.js';
export { ruleApplies, imageMatches, type PolicyContext, type Applicability } from './match.js';
export { RULES, type RuleDefinition, type RuleEval, type EvalEnv } from './rules.js';
export { compileGlob, globMatch, imagePatternMatches, referenceForms, GlobError } from './glob.js';
