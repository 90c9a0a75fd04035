/**
 * The arguments' shape: an object (absent is `{}`), with no NUL or lone surrogate (it would reach
 * the upstream other than it was decided: a C string cut short, a U+FFFD) and no nesting past what
 * can be audited — checked before anything reads them. The record gets their digest, never them.
 */
import { jsonProblem } from "../../core/index.js";
import { GatewayError } from "../errors.js";
import type { CallCheck } from "./call.js";

/** The arguments as an object, or the refusal (`arguments_invalid`). */
export function argumentsObject(input: unknown): Record<string, unknown> | GatewayError {
  const a = input === undefined ? {} : input;
  if (typeof a !== "object" || a === null || Array.isArray(a)) {
    return new GatewayError("arguments_invalid", "the arguments must be an object");
  }
  const odd = jsonProblem(a);
  if (odd) {
    return new GatewayError(
      "arguments_invalid",
      `the arguments${odd.at ? ` at ${odd.at}` : ""} ${odd.message}`,
    );
  }
  return a as Record<string, unknown>;
}

export const argumentsShape: CallCheck = (call, env) => {
  const args = argumentsObject(call.input);
  if (args instanceof GatewayError) return args;
  call.args = args;
  call.record.argumentsDigest = env.deps.digest(args);
  return undefined;
};
