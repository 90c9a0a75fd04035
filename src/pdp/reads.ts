/**
 * What the guardrails can read, found once from their ASTs, so that each request hands Cedar only
 * that: every value crossing into WebAssembly is serialized, and attributes no policy names are
 * dead weight. Sound because Cedar reads attributes only by literal name (`e.a`, `e has a`,
 * `e["a"]`): an attribute whose name appears in no policy cannot be read.
 *
 * Entities are compared by uid, never by attributes, so pruning their attributes changes nothing.
 * The context is a record, which a policy could compare whole (`context == {...}`): if any policy
 * uses `context` other than to read an attribute, the context is passed whole.
 */
import type { PolicyJson } from "./cedar.js";

export interface Reads {
  /** Every attribute name read anywhere. */
  readonly attrs: Set<string>;
  /** The context attributes read, or `all` when the context is used whole. */
  context: Set<string> | "all";
}

export function emptyReads(): Reads {
  return { attrs: new Set(), context: new Set() };
}

function attrNames(attr: unknown): string[] {
  if (typeof attr === "string") return [attr];
  return Array.isArray(attr) ? attr.filter((a): a is string => typeof a === "string") : [];
}

function isContext(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { Var?: unknown }).Var === "context";
}

function walk(node: unknown, reads: Reads): void {
  if (Array.isArray(node)) {
    for (const v of node) walk(v, reads);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const o = node as Record<string, unknown>;
  if (isContext(o)) {
    reads.context = "all";
    return;
  }
  for (const key of [".", "has"] as const) {
    const access = o[key] as { left?: unknown; attr?: unknown } | undefined;
    if (access && typeof access === "object" && "attr" in access) {
      const names = attrNames(access.attr);
      for (const n of names) reads.attrs.add(n);
      if (isContext(access.left)) {
        if (reads.context !== "all" && names[0] !== undefined) reads.context.add(names[0]);
      } else {
        walk(access.left, reads);
      }
      for (const [k, v] of Object.entries(o)) if (k !== key) walk(v, reads);
      return;
    }
  }
  for (const v of Object.values(o)) walk(v, reads);
}

/** Adds what one policy reads. */
export function addReads(policy: PolicyJson, reads: Reads): void {
  walk(policy.conditions, reads);
}
