/**
 * Checks on strings and JSON values that come from a request, before anything reaches the store:
 * PostgreSQL refuses NUL in text and lone UTF-16 surrogates cannot be encoded as UTF-8, so either
 * would otherwise surface as a database error deep inside a handler. The edges (the HTTP routes)
 * run these and answer a coded 400; nothing here knows about HTTP.
 */

/** What is wrong with a value: its kind (for the caller's reason code) and a message fragment. */
export interface InputProblem {
  readonly kind: "invalid" | "too_long" | "too_deep";
  /** Lowercase, without the value's name: `holds a control character (U+0000)`. */
  readonly message: string;
}

export interface TextRules {
  /** Most UTF-16 code units allowed. */
  readonly max: number;
  /** Free text (a reason, a note): tab, line feed and carriage return are allowed. */
  readonly multiline?: boolean | undefined;
}

/** Deepest nesting of objects and arrays a request body may have (the body itself is level 1). */
export const MAX_JSON_DEPTH = 32;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const codePoint = (c: string) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;

function encodingProblem(value: string): InputProblem | undefined {
  const lone = LONE_SURROGATE.exec(value);
  if (lone) return { kind: "invalid", message: `holds a lone surrogate (${codePoint(lone[0])})` };
  return undefined;
}

/**
 * The problem of a string from a request, or undefined: longer than `max`, a lone surrogate, or a
 * control character (C0, DEL, C1; tab and line breaks allowed in `multiline` text).
 */
export function textProblem(value: string, rules: TextRules): InputProblem | undefined {
  if (value.length > rules.max) {
    return { kind: "too_long", message: `is longer than ${rules.max} characters` };
  }
  const control = (rules.multiline ? CONTROL_BUT_LINES : CONTROL).exec(value);
  if (control) return { kind: "invalid", message: `holds a control character (${codePoint(control[0])})` };
  return encodingProblem(value);
}

export interface JsonProblem extends InputProblem {
  /** Where, as a path from the root: `context.arguments.a[3]` (empty for the root). */
  readonly at: string;
}

const NUL = "\u0000";
/** A path as shown in a message: its end, when it is long. */
const shown = (at: string) => (at.length > 120 ? `…${at.slice(-120)}` : at);

/**
 * The first problem of a parsed JSON value, or undefined: objects and arrays nested deeper than
 * `maxDepth`, or a string or key holding NUL or a lone surrogate. Iterative: a value nested
 * thousands of levels deep is refused without recursion.
 */
export function jsonProblem(value: unknown, maxDepth: number = MAX_JSON_DEPTH): JsonProblem | undefined {
  // Plain loops and no path per member: a path is spelled only for the member at fault (every
  // request body goes through here).
  const stack: Visit[] = [{ value, parent: undefined, key: "", depth: 0 }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const v = visit.value;
    if (typeof v === "string") {
      const p = stringProblem(v);
      if (p) return { ...p, at: shown(pathOf(visit)) };
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    const depth = visit.depth + 1;
    if (depth > maxDepth) {
      return {
        kind: "too_deep",
        message: `is nested deeper than ${maxDepth} levels`,
        at: shown(pathOf(visit)),
      };
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], parent: visit, key: i, depth });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const member: Visit = { value: (v as Record<string, unknown>)[key], parent: visit, key, depth };
      const p = stringProblem(key);
      if (p) return { ...p, message: `key ${p.message}`, at: shown(pathOf(member)) };
      stack.push(member);
    }
  }
  return undefined;
}

/** A value `jsonProblem` has still to look at, and where it sits. */
interface Visit {
  readonly value: unknown;
  readonly parent: Visit | undefined;
  /** Its key in its parent object, or its index in its parent array. */
  readonly key: string | number;
  readonly depth: number;
}

/** `a.b[2].c`: a visit's path from the root (empty for the root). */
function pathOf(visit: Visit): string {
  let at = "";
  for (let v: Visit | undefined = visit; v?.parent !== undefined; v = v.parent) {
    at =
      typeof v.key === "number"
        ? `[${v.key}]${at}`
        : v.parent.parent === undefined
          ? `${v.key}${at}`
          : `.${v.key}${at}`;
  }
  return at;
}

function stringProblem(s: string): InputProblem | undefined {
  if (s.includes(NUL)) return { kind: "invalid", message: "holds a NUL character" };
  return encodingProblem(s);
}
