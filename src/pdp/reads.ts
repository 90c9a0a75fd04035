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

/**
 * The actions a set of policies can apply to, from their scopes alone: a policy scoped
 * `action == A` applies only to A, one scoped `action in G` (or `in [G, …]`) only to G and to the
 * actions whose parents include G; an unscoped one, or any scope not understood here, to every
 * action. A request whose action no policy can apply to needs no call into Cedar: no policy's
 * condition is even evaluated when its scope does not match.
 */
export interface ActionScopes {
  /** Some policy may apply to any action. */
  readonly any: boolean;
  /** Actions named by `==`. */
  readonly equal: ReadonlySet<string>;
  /** Actions and groups named by `in`. */
  readonly within: ReadonlySet<string>;
}

export function actionScopes(policies: readonly PolicyJson[], actionType: string): ActionScopes {
  const equal = new Set<string>();
  const within = new Set<string>();
  let any = false;
  const uid = (e: unknown): string | undefined => {
    const ref = e as { type?: unknown; id?: unknown } | null;
    return ref !== null && typeof ref === "object" && ref.type === actionType && typeof ref.id === "string"
      ? ref.id
      : undefined;
  };
  for (const policy of policies) {
    const scope = (policy as { action?: unknown }).action as
      | { op?: unknown; entity?: unknown; entities?: unknown }
      | undefined;
    const op = scope?.op;
    const ids =
      op === "==" || (op === "in" && scope?.entity !== undefined)
        ? [uid(scope?.entity)]
        : op === "in" && Array.isArray(scope?.entities)
          ? scope.entities.map(uid)
          : undefined;
    if (ids === undefined || ids.some((id) => id === undefined)) {
      any = true; // `All`, or a scope this does not read: assume it may apply
      continue;
    }
    for (const id of ids as string[]) (op === "==" ? equal : within).add(id);
  }
  return { any, equal, within };
}
