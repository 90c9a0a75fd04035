/**
 * The error and warning codes the core (patterns, durations, templates, containment) raises, each documented in docs/ (test/errors/codes.test.ts
 * holds them to the source and the docs). src/error-codes.ts assembles every part's into `WritErrorCode`.
 */
export const CORE_ERROR_CODES = [
  "ERR_APPROVAL_POLICY_TOO_LARGE",
  "ERR_CLOCK",
  "ERR_CONFIG_BASELINE_WRITE",
  "ERR_CONFIG_GRANT_EXCEEDS_CEILING",
  "ERR_CONFIG_GRANT_HITS_DENY",
  "ERR_CONFIG_PATTERN",
  "ERR_CONFIG_UNKNOWN_ACTION",
  "ERR_CONFIG_WILDCARD_UNREVIEWED",
  "ERR_DURATION",
  "ERR_MALFORMED_ACTION",
  "ERR_PATTERN_ACTION",
  "ERR_PATTERN_EMPTY",
  "ERR_PATTERN_ESCAPE",
  "ERR_PATTERN_TOO_LONG",
  "ERR_REGEX_INVALID",
  "ERR_REGEX_TOO_LARGE",
  "ERR_REGEX_UNSUPPORTED",
  "ERR_TEMPLATE_PARAM",
  "ERR_UNKNOWN_PROVIDER",
  "WARN_CONFIG_BASELINE_CUT",
  "WARN_CONFIG_SHADOW_CEILING",
  "WARN_CONFIG_TTL_CAPPED",
] as const;

export type CoreErrorCode = (typeof CORE_ERROR_CODES)[number];
