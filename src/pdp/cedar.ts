/**
 * The Cedar engine, behind one seam. Everything in src/pdp calls Cedar through this object, so that
 * tests can count calls (pre-parsing must happen once, not per decision) and nothing else in writ
 * imports the WebAssembly module directly.
 *
 * Cedar runs in a WebAssembly instance with a fixed stack of its own. A call that exhausts it (a
 * policy nested a few hundred levels deep) traps, and the trap leaves the instance unusable: every
 * later call fails with "memory access out of bounds". So a call that throws is answered with
 * `ERR_CEDAR_ENGINE`, and the instance is replaced by a fresh one, into which every policy set
 * pre-parsed so far is pre-parsed again. compile.ts refuses texts nested deep enough to trap before
 * they reach Cedar; this is what keeps the process whole if something else does.
 *
 * Positions in Cedar's answers are UTF-8 byte offsets into the text it was given; `charOffset`
 * turns them into string indices.
 */
import { createRequire } from "node:module";
import type * as CedarWasm from "@cedar-policy/cedar-wasm/nodejs";
import { WritError } from "../core/index.js";

export type {
  AuthorizationAnswer,
  CedarValueJson,
  DetailedError,
  EntityJson,
  EntityUidJson,
  PolicyJson,
  SchemaJson,
  StatefulAuthorizationCall,
} from "@cedar-policy/cedar-wasm/nodejs";

type Engine = typeof CedarWasm;
type PolicySet = Parameters<Engine["preparsePolicySet"]>[1];

const require = createRequire(import.meta.url);
const MODULE = require.resolve("@cedar-policy/cedar-wasm/nodejs");

/** Loaded at the first call: a process that decides without Cedar (no guardrails) never builds it. */
let engine: Engine | undefined;
let generation = 0;
/** Every policy set pre-parsed so far, by id: what a fresh instance must be given again. */
const preparsed = new Map<string, PolicySet>();

/** A new instance: the module builds its WebAssembly instance when it is loaded. */
function restart(): void {
  delete require.cache[MODULE];
  engine = require(MODULE) as Engine;
  generation++;
  for (const [id, policies] of preparsed) {
    try {
      engine.preparsePolicySet(id, policies);
    } catch {
      // cannot happen for a set that was pre-parsed once; if it does, the set is gone (decisions
      // on it fail, and deny) and the instance it broke is replaced again
      preparsed.delete(id);
      restart();
      return;
    }
  }
}

function guarded<A extends unknown[], R>(call: (e: Engine, ...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      engine ??= require(MODULE) as Engine;
      return call(engine, ...args);
    } catch (err) {
      restart();
      const why = err instanceof Error ? err.message : String(err);
      throw new WritError("ERR_CEDAR_ENGINE", `cedar failed: ${why.toLowerCase()}`, { cause: err });
    }
  };
}

export const cedar = {
  policySetTextToParts: guarded((e, text: string) => e.policySetTextToParts(text)),
  policyToJson: guarded((e, policy: Parameters<Engine["policyToJson"]>[0]) => e.policyToJson(policy)),
  preparsePolicySet: guarded((e, id: string, policies: PolicySet) => {
    const answer = e.preparsePolicySet(id, policies);
    if (answer.type === "success") preparsed.set(id, policies);
    return answer;
  }),
  statefulIsAuthorized: guarded((e, call: Parameters<Engine["statefulIsAuthorized"]>[0]) =>
    e.statefulIsAuthorized(call),
  ),
  validate: guarded((e, call: Parameters<Engine["validate"]>[0]) => e.validate(call)),
  /** How many times the instance has been replaced after a failure (for tests and diagnostics). */
  restarts: () => generation,
};

/** The string index of a UTF-8 byte offset into `text`. */
export function charOffset(text: string, byteOffset: number): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    if (bytes >= byteOffset) return i;
    const code = text.codePointAt(i)!;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (code >= 0x10000) i++; // the low surrogate
  }
  return text.length;
}

/** Where each line of the last text asked about starts: a file of many policies is walked once. */
let lineStarts: { text: string; starts: number[] } | undefined;

/** 1-based line and column of a string index. */
export function lineColumn(text: string, index: number): { line: number; column: number } {
  if (lineStarts?.text !== text) {
    const starts = [0];
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
    lineStarts = { text, starts };
  }
  const { starts } = lineStarts;
  const at = Math.max(0, Math.min(index, text.length));
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: index - starts[lo]! + 1 };
}
