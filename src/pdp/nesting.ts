/**
 * How deep a guardrail may nest, checked before Cedar would recurse that deep. Cedar parses,
 * validates and evaluates recursively, on the fixed stack of its WebAssembly instance and on the
 * process's own; running out of either is a trap (cedar.ts). Measured on cedar-wasm 4.13 under
 * Node 20, in the worst case seen (a fresh instance not yet optimised): parsing fails at about 77
 * nested records, 130 nested parentheses or 318 chained operators; evaluating, at an expression
 * about 104 levels deep (`1 + 1 + …`, `x.a.b.…`).
 *
 * So two checks, each about half of what fails:
 * - on the text, before Cedar sees it (`tooDeep`): at most 32 levels of brackets and 128
 *   operators along one path (counted without precedence, so a bound from above);
 * - on the parsed policy, before it is validated or evaluated (`expressionDepth`): at most 48
 *   levels in its syntax tree.
 * Either refusal is `ERR_CEDAR_TOO_DEEP` with the position.
 */

export const MAX_BRACKETS = 32;
export const MAX_OPERATORS = 128;
export const MAX_EXPRESSION_DEPTH = 48;

export interface TooDeep {
  /** String index where the limit is passed. */
  readonly index: number;
  readonly message: string;
}

const OPEN = "([{";
const CLOSE = ")]}";
/** Operators that put their operands one level further down Cedar's syntax tree. */
const SYMBOLS = ["&&", "||", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "!", "."];
const KEYWORDS = new Set(["in", "has", "like", "is", "if"]);

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_]/.test(c);
}

/**
 * Walks the text once, skipping strings and comments, keeping per open bracket the operators met
 * at that level since its last `,` (elements and arguments are side by side, not nested). The
 * operators along one path are those counts summed over the open brackets.
 */
export function tooDeep(text: string): TooDeep | undefined {
  const levels: number[] = [0];
  let operators = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (OPEN.includes(c)) {
      levels.push(0);
      if (levels.length - 1 > MAX_BRACKETS) {
        return { index: i, message: `brackets nest more than ${MAX_BRACKETS} levels deep` };
      }
      continue;
    }
    if (CLOSE.includes(c)) {
      if (levels.length > 1) operators -= levels.pop()!;
      continue;
    }
    if (c === "," || c === ";") {
      operators -= levels[levels.length - 1]!;
      levels[levels.length - 1] = 0;
      continue;
    }
    let width = 0;
    if (isWordChar(c)) {
      let end = i;
      while (isWordChar(text[end])) end++;
      if (KEYWORDS.has(text.slice(i, end))) width = end - i;
      else {
        i = end - 1;
        continue;
      }
    } else width = SYMBOLS.find((s) => text.startsWith(s, i))?.length ?? 0;
    if (width === 0) continue;
    levels[levels.length - 1]!++;
    operators++;
    if (operators > MAX_OPERATORS) {
      return {
        index: i,
        message: `more than ${MAX_OPERATORS} operators along one path of the expression: split it into several policies or conditions`,
      };
    }
    i += width - 1;
  }
  return undefined;
}

/**
 * Levels of the syntax tree of a policy in Cedar's JSON form, where every operator is an object
 * holding its operands (`{"&&": {"left": …, "right": …}}`): two JSON levels a level. Counted with its
 * own stack.
 */
export function expressionDepth(json: unknown): number {
  let deepest = 0;
  const todo: [unknown, number][] = [[json, 1]];
  while (todo.length > 0) {
    const [v, depth] = todo.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > deepest) deepest = depth;
    for (const child of Object.values(v)) todo.push([child, depth + 1]);
  }
  return Math.ceil(deepest / 2);
}
