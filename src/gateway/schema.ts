/**
 * Argument checks: the tool's own `inputSchema` (JSON Schema draft 2020-12 unless it names
 * draft-07), then the argument constraints writ.yaml adds. Compiled once per definition hash; a
 * schema that does not compile makes the tool unusable (fail closed), never unchecked.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsImport from "ajv-formats";
import { isWritError, linearRegExpEngine, q, type RegexLike } from "../core/index.js";
import { GatewayError } from "./errors.js";

// ajv-formats is CommonJS; its default export arrives wrapped under nodenext.
const addFormats = ((addFormatsImport as unknown as { default?: unknown }).default ??
  addFormatsImport) as unknown as (ajv: Ajv | Ajv2020) => void;

/**
 * `pattern`s are matched in linear time, so an agent's argument cannot make a schema backtrack
 * (ReDoS). A tool's own schema may use what a linear matcher cannot run (lookaround,
 * backreferences): those patterns, written by the upstream server and not by the agent, keep the
 * native engine rather than making the tool unusable. writ.yaml's constraints never reach that
 * fallback: they are refused at load (`ERR_CONFIG_REGEX`).
 */
const regExp = Object.assign(
  (pattern: string, flags: string): RegexLike => {
    try {
      return linearRegExpEngine(pattern, flags);
    } catch (e) {
      if (isWritError(e, "ERR_REGEX_UNSUPPORTED") || isWritError(e, "ERR_REGEX_TOO_LARGE")) {
        return new RegExp(pattern, flags);
      }
      throw e;
    }
  },
  { code: "linearRegexOrNative" },
);
const ajv2020 = new Ajv2020({ strict: false, allErrors: false, validateFormats: true, code: { regExp } });
const ajv07 = new Ajv({ strict: false, allErrors: false, validateFormats: true, code: { regExp } });
addFormats(ajv2020);
addFormats(ajv07);

export type Check = (value: unknown) => string | undefined;

function describe(errors: readonly ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return "does not match the schema";
  return `${e.instancePath || "(the arguments)"} ${e.message ?? "is invalid"}`;
}

/** Compiles a JSON Schema into a check answering undefined (valid) or what is wrong. */
export function compileCheck(schema: unknown, what: string): Check {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new GatewayError("gateway_error", `${what}: the schema is not an object`);
  }
  const { $schema, ...rest } = schema as Record<string, unknown>;
  const draft07 = typeof $schema === "string" && /draft-0[67]/.test($schema);
  if (typeof $schema === "string" && !draft07 && !$schema.includes("2020-12")) {
    throw new GatewayError("gateway_error", `${what}: unsupported JSON Schema dialect ${q($schema)}`);
  }
  let validate: ValidateFunction;
  try {
    validate = (draft07 ? ajv07 : ajv2020).compile(rest);
  } catch (err) {
    throw new GatewayError(
      "gateway_error",
      `${what}: the schema does not compile: ${(err as Error).message}`,
    );
  }
  return (value) => (validate(value) ? undefined : describe(validate.errors));
}
