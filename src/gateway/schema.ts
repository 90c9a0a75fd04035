/**
 * Argument checks: the tool's own `inputSchema` (JSON Schema draft 2020-12 unless it names
 * draft-07), then the argument constraints writ.yaml adds. Compiled once per definition hash; a
 * schema that does not compile makes the tool unusable (fail closed), never unchecked.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsImport from "ajv-formats";
import { q } from "../core/index.js";
import { GatewayError } from "./errors.js";

// ajv-formats is CommonJS; its default export arrives wrapped under nodenext.
const addFormats = ((addFormatsImport as unknown as { default?: unknown }).default ??
  addFormatsImport) as unknown as (ajv: Ajv | Ajv2020) => void;

const ajv2020 = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
const ajv07 = new Ajv({ strict: false, allErrors: false, validateFormats: true });
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
