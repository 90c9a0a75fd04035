/**
 * Compiling guardrails at load: parse the Cedar text of every source, refuse what a guardrail may
 * not be (nested too deep for Cedar's stack, a `permit`, a template, a duplicate id), validate
 * against the schema generated from the config, then pre-parse the policy set once into Cedar's
 * cache. A call that makes Cedar fail is a problem (`ERR_CEDAR_ENGINE`) at the policy it was about.
 *
 * Every problem names the file, line and column where the operator wrote the policy: Cedar reports
 * UTF-8 byte offsets into the text it was given, which are mapped back through the source's own
 * position in its file (an inline guardrail sits inside writ.yaml).
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import type { ConfigProblem, GuardrailSource } from "../config/index.js";
import { formatPath } from "../config/index.js";
import { isWritError, q, type RuleMode, type Vocabulary, type WritConfig } from "../core/index.js";
import { cedar, charOffset, type DetailedError, lineColumn, type PolicyJson } from "./cedar.js";
import type { PdpErrorCode } from "./codes.js";
import { ACTION_TYPE, CompiledGuardrails, type GuardrailPolicy, PERMIT_ALL } from "./guardrails.js";
import { expressionDepth, MAX_EXPRESSION_DEPTH, tooDeep } from "./nesting.js";
import { actionScopes, addReads, emptyReads } from "./reads.js";
import { actionTable, schemaFromTable } from "./schema.js";

/**
 * One source of Cedar text and where it sits: a `.cedar` file (line 1, column 1), or an inline
 * block inside writ.yaml. The config loader's `GuardrailSource`; `indent` is added to the column of
 * every line (the indentation a YAML block scalar strips).
 */
export type GuardrailText = Omit<GuardrailSource, "path" | "indent" | "mode"> & {
  readonly path?: GuardrailSource["path"];
  readonly indent?: number;
  /** Every policy of the source enforces (default), or is in shadow mode (docs/shadow.md). */
  readonly mode?: RuleMode;
};

export interface CompileOptions {
  /** Per-source texts with positions; without them the joined `config.guardrails.text` is used. */
  readonly sources?: readonly GuardrailText[];
  readonly vocab?: Vocabulary;
}

export interface CompileResult {
  readonly problems: readonly ConfigProblem[];
  /** Present when there are no errors and there is at least one policy. */
  readonly guardrails?: CompiledGuardrails | undefined;
}

interface Parsed {
  readonly src: GuardrailText;
  readonly policy: GuardrailPolicy;
  readonly start: number; // string index of the policy in src.text
  readonly json: PolicyJson;
  readonly referencesArguments: boolean;
}

const ARGUMENTS_ACCESS = /^context\s*(\.\s*arguments\b|\[\s*"arguments"\s*\])/;

function where(src: GuardrailText, index: number): { line: number; column: number } {
  const lc = lineColumn(src.text, index);
  return {
    line: src.line + lc.line - 1,
    column: (lc.line === 1 ? src.column - 1 : 0) + lc.column + (src.indent ?? 0),
  };
}

function defaultSources(config: WritConfig): GuardrailText[] {
  const g = config.guardrails;
  if (g?.sources !== undefined) {
    return g.sources.map((src, i) => ({ ...src, line: 1, column: 1, path: ["guardrails", i] }));
  }
  if (!g || g.text.trim().length === 0) return [];
  const file = g.files.length === 1 ? g.files[0]! : config.file;
  return [{ file, text: g.text, line: 1, column: 1, path: ["guardrails"] }];
}

/** Cedar action ids a policy names: `Writ::Action::"aws:s3"` in its scope or its conditions. */
function namedActions(json: unknown, out: Set<string>): void {
  if (Array.isArray(json)) {
    for (const v of json) namedActions(v, out);
    return;
  }
  if (json === null || typeof json !== "object") return;
  const o = json as Record<string, unknown>;
  if (o.type === "Writ::Action" && typeof o.id === "string") out.add(o.id);
  for (const v of Object.values(o)) namedActions(v, out);
}

/** A policy without `@id` is named where it is written: `guardrails.cedar:12`, made unique. */
function autoId(base: string, column: number, taken: ReadonlyMap<string, unknown>): string {
  if (!taken.has(base)) return base;
  const withColumn = `${base}:${column}`;
  let id = withColumn;
  for (let k = 2; taken.has(id); k++) id = `${withColumn}#${k}`;
  return id;
}

function cleanMessage(message: string): string {
  return message
    .replace(/^failed to parse polic(y|ies)( with id `[^`]*`)? from string: /, "")
    .replace(/^for policy `[^`]*`, /, "");
}

function describe(e: DetailedError): string {
  const parts = [cleanMessage(e.message)];
  for (const r of e.related ?? []) parts.push(cleanMessage(r.message));
  if (e.help) parts.push(e.help);
  return parts.join(": ");
}

/** The problems of one compile, each placed where its text sits in the operator's file. */
class Problems {
  readonly list: ConfigProblem[] = [];

  add(
    code: PdpErrorCode,
    src: GuardrailText,
    index: number | undefined,
    message: string,
    severity: "error" | "warning" = "error",
  ): void {
    const pos = index === undefined ? {} : where(src, index);
    this.list.push({
      code,
      severity,
      file: src.file,
      ...pos,
      path: src.path ? formatPath(src.path) : "",
      message,
    });
  }

  /** Cedar's answer, or undefined with the failure recorded where the text sits (cedar.ts). */
  engine<T>(src: GuardrailText, index: number | undefined, call: () => T): T | undefined {
    try {
      return call();
    } catch (e) {
      if (!isWritError(e, "ERR_CEDAR_ENGINE")) throw e;
      this.add("ERR_CEDAR_ENGINE", src, index, e.message);
      return undefined;
    }
  }

  get failed(): boolean {
    return this.list.some((p) => p.severity === "error");
  }
}

/** The policies parsed so far, by id, and every action any of them names. */
interface ParseState {
  readonly parsed: Parsed[];
  readonly ids: Map<string, Parsed>;
  readonly named: Set<string>;
}

/** One policy of a source, starting at `start`: refused (a problem) or parsed. */
function parsePolicy(
  out: Problems,
  state: ParseState,
  src: GuardrailText,
  text: string,
  start: number,
): Parsed | undefined {
  const json = out.engine(src, start, () => cedar.policyToJson(text));
  if (!json) return undefined;
  if (json.type === "failure") {
    for (const e of json.errors) {
      const at = e.sourceLocations?.[0];
      out.add("ERR_CEDAR_SYNTAX", src, start + (at ? charOffset(text, at.start) : 0), describe(e));
    }
    return undefined;
  }
  const p: PolicyJson = json.json;
  const depth = expressionDepth(p);
  if (depth > MAX_EXPRESSION_DEPTH) {
    out.add(
      "ERR_CEDAR_TOO_DEEP",
      src,
      start,
      `the policy's expression nests ${depth} levels deep: at most ${MAX_EXPRESSION_DEPTH} (split a long \`||\` or \`&&\` chain into several policies, or test a set with \`.contains\`)`,
    );
    return undefined;
  }
  const pos = where(src, start);
  const id = p.annotations?.id ?? autoId(`${basename(src.file)}:${pos.line}`, pos.column, state.ids);
  if (p.effect !== "forbid") {
    out.add(
      "ERR_CEDAR_PERMIT",
      src,
      start,
      `policy ${q(id)}: guardrails may only forbid: writ permits what the core allows, and a guardrail can only take away`,
    );
    return undefined;
  }
  const policy: GuardrailPolicy = {
    kind: "guardrail-policy",
    id,
    effect: "forbid",
    mode: src.mode ?? "enforce",
    file: src.file,
    ...pos,
    text,
  };
  const earlier = state.ids.get(id);
  if (earlier || id === PERMIT_ALL) {
    const first = earlier ? `${earlier.policy.file}:${earlier.policy.line}` : "writ";
    out.add("ERR_CEDAR_DUPLICATE_ID", src, start, `policy id ${q(id)} is already used (${first})`);
    return undefined;
  }
  namedActions(p, state.named);
  const reads = emptyReads();
  addReads(p, reads);
  return {
    src,
    policy,
    start,
    json: p,
    referencesArguments: reads.context === "all" || reads.context.has("arguments"),
  };
}

/** Step 1 for one source: parse, split, refuse what a guardrail may not be (nested too deep for Cedar's stack first). */
function parseSource(out: Problems, state: ParseState, src: GuardrailText): void {
  const deep = tooDeep(src.text);
  if (deep) {
    out.add("ERR_CEDAR_TOO_DEEP", src, deep.index, deep.message);
    return;
  }
  const parts = out.engine(src, 0, () => cedar.policySetTextToParts(src.text));
  if (!parts) return;
  if (parts.type === "failure") {
    for (const e of parts.errors) {
      const at = e.sourceLocations?.[0];
      out.add("ERR_CEDAR_SYNTAX", src, at ? charOffset(src.text, at.start) : undefined, describe(e));
    }
    return;
  }
  for (const t of parts.policy_templates) {
    const start = src.text.indexOf(t);
    out.add(
      "ERR_CEDAR_TEMPLATE",
      src,
      start < 0 ? undefined : start,
      "a guardrail cannot be a template (`?principal`, `?resource`)",
    );
  }
  let cursor = 0;
  for (const text of parts.policies) {
    const found = src.text.indexOf(text, cursor);
    const start = found < 0 ? cursor : found;
    if (found >= 0) cursor = found + text.length;
    const entry = parsePolicy(out, state, src, text, start);
    if (!entry) continue;
    state.ids.set(entry.policy.id, entry);
    state.parsed.push(entry);
  }
}

type Validation = ReturnType<typeof cedar.validate>;
type Findings = Map<string, { errors: DetailedError[]; warnings: DetailedError[] }>;

/** Sorts a validation answer's errors and warnings to the policies they are about, by id. */
function sortOut(findings: Findings, answer: Extract<Validation, { type: "success" }>): void {
  const of = (id: string) => {
    const f = findings.get(id) ?? { errors: [], warnings: [] };
    findings.set(id, f);
    return f;
  };
  for (const v of answer.validationErrors) of(v.policyId).errors.push(v.error);
  for (const v of answer.validationWarnings) of(v.policyId).warnings.push(v.error);
}

/** Reports one policy's validation findings, each once, without what the schema cannot describe. */
function reportFindings(
  out: Problems,
  entry: Parsed,
  found: { errors: DetailedError[]; warnings: DetailedError[] } | undefined,
): void {
  const { src, policy, start, referencesArguments } = entry;
  const seen = new Set<string>();
  const report = (e: DetailedError, severity: "error" | "warning") => {
    const at = e.sourceLocations?.[0];
    const from = at ? charOffset(policy.text, at.start) : 0;
    const to = at ? charOffset(policy.text, at.end) : 0;
    // `context.arguments` is open JSON the schema cannot describe (see schema.ts)
    if (referencesArguments) {
      if (ARGUMENTS_ACCESS.test(policy.text.slice(from, to))) return;
      if (severity === "warning" && /policy is impossible/.test(e.message)) return;
    }
    // the same mistake is reported once per action the policy applies to: name none of them
    const message = `policy ${q(policy.id)}: ${describe(e).replace(/ for Writ::Action::"[^"]*"/, "")}`;
    const key = `${from}:${to}:${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.add(
      severity === "error" ? "ERR_CEDAR_VALIDATION" : "WARN_CEDAR_VALIDATION",
      src,
      start + from,
      message,
      severity,
    );
  };
  for (const e of found?.errors ?? []) report(e, "error");
  // a policy with errors also draws warnings that only repeat them
  if (seen.size === 0) for (const e of found?.warnings ?? []) report(e, "warning");
}

/**
 * Step 2: validate the policies against the schema generated from the config: all in one call (each
 * call pays for the schema: 10,000 policies took minutes one by one), the answers sorted back to
 * their policies by id; one call per policy only when the joint call fails as a whole.
 */
function validatePolicies(
  out: Problems,
  parsed: readonly Parsed[],
  schema: ReturnType<typeof schemaFromTable>,
): void {
  const validate = (policies: readonly Parsed[]) =>
    cedar.validate({
      schema,
      policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.policy.id, p.policy.text])) },
    });
  const joint =
    parsed.length === 0 ? undefined : out.engine(parsed[0]!.src, undefined, () => validate(parsed));
  const findings: Findings = new Map();
  if (joint?.type === "success") sortOut(findings, joint);
  for (const entry of parsed) {
    const { src, policy, start } = entry;
    if (joint?.type !== "success") {
      const answer = out.engine(src, start, () => validate([entry]));
      if (!answer) continue;
      if (answer.type === "failure") {
        for (const e of answer.errors)
          out.add("ERR_CEDAR_VALIDATION", src, start, `policy ${q(policy.id)}: ${describe(e)}`);
        continue;
      }
      sortOut(findings, answer);
    }
    reportFindings(out, entry, findings.get(policy.id));
  }
}

/**
 * Step 3: pre-parse once the policies of one mode into Cedar's cache (a shadow policy is never in
 * the set that decides); the id is the content's hash, so reloading reuses the slot.
 */
function preparse(
  out: Problems,
  parsed: readonly Parsed[],
  first: GuardrailText,
  mode: RuleMode,
): string | undefined {
  const staticPolicies: Record<string, string> = { [PERMIT_ALL]: "permit(principal, action, resource);" };
  for (const { policy } of parsed) if (policy.mode === mode) staticPolicies[policy.id] = policy.text;
  const id = `writ-guardrails-${mode === "shadow" ? "shadow-" : ""}${createHash("sha256").update(JSON.stringify(staticPolicies)).digest("hex").slice(0, 32)}`;
  const pre = out.engine(first, undefined, () => cedar.preparsePolicySet(id, { staticPolicies }));
  if (!pre) return undefined;
  if (pre.type === "failure") {
    for (const e of pre.errors) out.add("ERR_CEDAR_SYNTAX", first, undefined, describe(e));
    return undefined;
  }
  return id;
}

export function compileGuardrails(config: WritConfig, opts: CompileOptions = {}): CompileResult {
  const sources = opts.sources ?? defaultSources(config);
  const vocab = opts.vocab ?? {};
  const out = new Problems();
  const problems = out.list;

  const state: ParseState = { parsed: [], ids: new Map(), named: new Set() };
  for (const src of sources) parseSource(out, state, src);
  const { parsed } = state;

  const table = actionTable(config, { vocab, named: state.named });
  const schema = schemaFromTable(table);
  validatePolicies(out, parsed, schema);
  if (out.failed || parsed.length === 0) return { problems };

  const reads = emptyReads();
  for (const { json } of parsed) addReads(json, reads);
  const policySetId = preparse(out, parsed, sources[0]!, "enforce");
  if (policySetId === undefined) return { problems };
  const anyShadow = parsed.some((p) => p.policy.mode === "shadow");
  const shadowSetId = anyShadow ? preparse(out, parsed, sources[0]!, "shadow") : undefined;
  if (anyShadow && shadowSetId === undefined) return { problems };
  const guardrails = new CompiledGuardrails({
    config,
    policySetId,
    shadowSetId,
    policies: parsed.map((p) => p.policy),
    schema,
    table,
    vocab,
    reads,
    scopes: actionScopes(
      parsed.map((p) => p.json),
      ACTION_TYPE,
    ),
  });
  return { problems, guardrails };
}
