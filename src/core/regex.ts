/**
 * Regular expressions from writ.yaml (ticket patterns, `pattern` in playbook parameter schemas),
 * matched in time linear in the input: a Thompson NFA run as a Pike VM over code points, so no
 * pattern can backtrack (`^(a+)+$` on 2,000 `a`s and a `!` answers as fast as `^a+$`).
 *
 * The syntax is ECMAScript's with the `u` flag (the native parser checks it first). Constructs that
 * no linear-time matcher can run are refused: backreferences and lookaround. A pattern whose
 * automaton would exceed `MAX_REGEX_STATES` (counted repetition such as `(a{1000}){1000}`) or that
 * nests groups deeper than `MAX_REGEX_DEPTH` is refused too. Single-character atoms (classes,
 * escapes, `.`) are tested by the native engine on one code point, which cannot backtrack.
 */
import { q, WritError } from "./errors.js";

export const MAX_REGEX_LENGTH = 1000;
export const MAX_REGEX_STATES = 4000;
export const MAX_REGEX_DEPTH = 32;

/** The smallest shape a matcher must have (Ajv's `RegExpLike`). */
export interface RegexLike {
  test(input: string): boolean;
}

type Node =
  | { readonly t: "char"; readonly cp: number }
  | { readonly t: "set"; readonly re: RegExp }
  | { readonly t: "assert"; readonly kind: "^" | "$" | "b" | "B" }
  | { readonly t: "seq"; readonly items: readonly Node[] }
  | { readonly t: "alt"; readonly options: readonly Node[] }
  | { readonly t: "rep"; readonly body: Node; readonly min: number; readonly max: number };

const INF = Number.POSITIVE_INFINITY;

function unsafe(source: string, why: string): WritError {
  return new WritError(
    "ERR_REGEX_UNSUPPORTED",
    `regular expression ${q(source)}: ${why}: it cannot be matched in linear time`,
  );
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const n = this.disjunction();
    if (this.i < this.src.length) throw this.invalid(`unexpected ${q(this.src[this.i])}`);
    return n;
  }

  private invalid(why: string): WritError {
    return new WritError("ERR_REGEX_INVALID", `regular expression ${q(this.src)}: ${why}`);
  }

  private disjunction(): Node {
    const options = [this.alternative()];
    while (this.src[this.i] === "|") {
      this.i++;
      options.push(this.alternative());
    }
    return options.length === 1 ? options[0]! : { t: "alt", options };
  }

  private alternative(): Node {
    const items: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== "|" && this.src[this.i] !== ")") {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return items.length === 1 ? items[0]! : { t: "seq", items };
  }

  private quantified(atom: Node): Node {
    const ch = this.src[this.i];
    let min: number;
    let max: number;
    if (ch === "*") [min, max] = [0, INF];
    else if (ch === "+") [min, max] = [1, INF];
    else if (ch === "?") [min, max] = [0, 1];
    else if (ch === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (!m) throw this.invalid("bad quantifier");
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? INF : Number(m[3]);
      this.i += m[0].length - 1;
    } else return atom;
    if (min > MAX_REGEX_STATES || (max !== INF && max > MAX_REGEX_STATES)) {
      throw new WritError(
        "ERR_REGEX_TOO_LARGE",
        `regular expression ${q(this.src)}: a repetition count above ${MAX_REGEX_STATES}`,
      );
    }
    this.i++;
    if (this.src[this.i] === "?") this.i++; // lazy: the same language, and test() asks only whether
    if (atom.t === "assert") throw this.invalid("nothing to repeat");
    return { t: "rep", body: atom, min, max };
  }

  private atom(): Node {
    const src = this.src;
    const ch = src[this.i]!;
    if (ch === "^" || ch === "$") {
      this.i++;
      return { t: "assert", kind: ch };
    }
    if (ch === "(") return this.group();
    if (ch === "[") return this.set(this.classEnd());
    if (ch === ".") {
      this.i++;
      return { t: "set", re: single(".") };
    }
    if (ch === "\\") return this.escape();
    const cp = src.codePointAt(this.i)!;
    this.i += cp > 0xffff ? 2 : 1;
    return { t: "char", cp };
  }

  private group(): Node {
    const src = this.src;
    this.i++;
    if (src.startsWith("?=", this.i) || src.startsWith("?!", this.i)) throw unsafe(src, "lookahead");
    if (src.startsWith("?<=", this.i) || src.startsWith("?<!", this.i)) throw unsafe(src, "lookbehind");
    if (src.startsWith("?:", this.i)) this.i += 2;
    else if (src.startsWith("?<", this.i)) {
      const close = src.indexOf(">", this.i);
      if (close < 0) throw this.invalid("unterminated group name");
      this.i = close + 1;
    } else if (src[this.i] === "?") throw this.invalid("unknown group");
    if (++this.depth > MAX_REGEX_DEPTH) {
      throw new WritError(
        "ERR_REGEX_TOO_LARGE",
        `regular expression ${q(src)}: groups nest deeper than ${MAX_REGEX_DEPTH}`,
      );
    }
    const inner = this.disjunction();
    this.depth--;
    if (src[this.i] !== ")") throw this.invalid("unterminated group");
    this.i++;
    return inner;
  }

  /** The index just past the `]` closing the class that starts at `this.i`. */
  private classEnd(): number {
    for (let j = this.i + 1; j < this.src.length; j++) {
      const c = this.src[j];
      if (c === "\\") j++;
      else if (c === "]") return j + 1;
    }
    throw this.invalid("unterminated character class");
  }

  private set(end: number): Node {
    const text = this.src.slice(this.i, end);
    this.i = end;
    return { t: "set", re: single(text) };
  }

  private escape(): Node {
    const src = this.src;
    const next = src[this.i + 1];
    if (next === undefined) throw this.invalid("`\\` at end of pattern");
    if (next === "b" || next === "B") {
      this.i += 2;
      return { t: "assert", kind: next };
    }
    if (/[1-9]/.test(next) || next === "k") throw unsafe(src, "backreference");
    let end = this.i + 2;
    if ((next === "p" || next === "P" || next === "u") && src[end] === "{") {
      const close = src.indexOf("}", end);
      if (close < 0) throw this.invalid("unterminated escape");
      end = close + 1;
    } else if (next === "u") {
      end += 4;
      // a surrogate pair written as two escapes is one code point under `u`
      if (
        /^[dD][89abAB]/.test(src.slice(this.i + 2, this.i + 4)) &&
        /^\\u[dD][c-fC-F]/.test(src.slice(end))
      ) {
        end += 6;
      }
    } else if (next === "x") end += 2;
    else if (next === "c") end += 1;
    else if (next.codePointAt(0)! > 0xffff) end += 1;
    const text = src.slice(this.i, end);
    this.i = end;
    return { t: "set", re: single(text) };
  }
}

/** A native matcher for one code point: a class, an escape or `.` alone cannot backtrack. */
function single(atom: string): RegExp {
  return new RegExp(`^(?:${atom})$`, "u");
}

// --- the automaton ---------------------------------------------------------------------------

enum Op {
  Char = 0,
  Set = 1,
  Split = 2,
  Assert = 3,
  Match = 4,
}

interface State {
  op: Op;
  cp: number;
  re: RegExp | undefined;
  kind: string;
  out: number;
  out2: number;
}

class Builder {
  readonly states: State[] = [];
  constructor(private readonly source: string) {}

  add(op: Op, fields: Partial<State> = {}): number {
    if (this.states.length >= MAX_REGEX_STATES) {
      throw new WritError(
        "ERR_REGEX_TOO_LARGE",
        `regular expression ${q(this.source)}: its automaton exceeds ${MAX_REGEX_STATES} states (shorten counted repetitions)`,
      );
    }
    this.states.push({ op, cp: 0, re: undefined, kind: "", out: -1, out2: -1, ...fields });
    return this.states.length - 1;
  }

  /** Compiles `n` so that it continues at `next`; returns its entry state. */
  build(n: Node, next: number): number {
    switch (n.t) {
      case "char":
        return this.add(Op.Char, { cp: n.cp, out: next });
      case "set":
        return this.add(Op.Set, { re: n.re, out: next });
      case "assert":
        return this.add(Op.Assert, { kind: n.kind, out: next });
      case "seq": {
        let entry = next;
        for (let k = n.items.length - 1; k >= 0; k--) entry = this.build(n.items[k]!, entry);
        return entry;
      }
      case "alt": {
        const entries = n.options.map((o) => this.build(o, next));
        let entry = entries[entries.length - 1]!;
        for (let k = entries.length - 2; k >= 0; k--)
          entry = this.add(Op.Split, { out: entries[k]!, out2: entry });
        return entry;
      }
      case "rep": {
        let entry = next;
        if (n.max === INF) {
          // a loop: split → body → back to the split, or on to `next`
          const split = this.add(Op.Split, { out2: entry });
          this.states[split]!.out = this.build(n.body, split);
          entry = split;
        } else {
          // x{min,max}: the optional copies nest, each may leave for `next`
          for (let k = n.min; k < n.max; k++)
            entry = this.add(Op.Split, { out: this.build(n.body, entry), out2: next });
        }
        for (let k = 0; k < n.min; k++) entry = this.build(n.body, entry);
        return entry;
      }
    }
  }
}

function isWordChar(cp: number): boolean {
  return (
    (cp >= 48 && cp <= 57) || (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122) || cp === 95 // 0-9 A-Z a-z _
  );
}

/** What a set answers for each ASCII code point, asked once at compile time. */
function asciiTable(re: RegExp): Uint8Array {
  const table = new Uint8Array(128);
  for (let cp = 0; cp < 128; cp++) table[cp] = re.test(String.fromCharCode(cp)) ? 1 : 0;
  return table;
}

const ASSERT_KINDS = ["^", "$", "b", "B"] as const;

/** Does the pattern only match from position 0 (every way in starts with `^`)? */
function anchoredAtStart(n: Node): boolean {
  if (n.t === "assert") return n.kind === "^";
  if (n.t === "seq") return n.items.length > 0 && anchoredAtStart(n.items[0]!);
  if (n.t === "alt") return n.options.every(anchoredAtStart);
  return false;
}

/** A compiled pattern; `test` runs in O(input × states). Not reentrant (`test` is synchronous). */
export class LinearRegex implements RegexLike {
  // the automaton, one entry per state, in flat arrays
  private readonly op: Uint8Array;
  private readonly arg: Int32Array; // Char: the code point; Set: index into `sets`; Assert: index into ASSERT_KINDS
  private readonly out: Int32Array;
  private readonly out2: Int32Array;
  private readonly sets: readonly { readonly re: RegExp; readonly ascii: Uint8Array }[];
  private readonly start: number;
  private readonly anchored: boolean;
  // working memory, reused by every call
  private readonly mark: Int32Array;
  private gen = 0;
  private current: Int32Array;
  private next: Int32Array;
  private readonly stack: Int32Array;

  constructor(readonly source: string) {
    if (source.length > MAX_REGEX_LENGTH) {
      throw new WritError(
        "ERR_REGEX_TOO_LARGE",
        `regular expression of ${source.length} characters: at most ${MAX_REGEX_LENGTH}`,
      );
    }
    try {
      new RegExp(source, "u");
    } catch (e) {
      throw new WritError("ERR_REGEX_INVALID", `regular expression ${q(source)}: ${(e as Error).message}`);
    }
    const ast = new Parser(source).parse();
    const b = new Builder(source);
    const match = b.add(Op.Match);
    this.start = b.build(ast, match);
    this.anchored = anchoredAtStart(ast);
    const n = b.states.length;
    this.op = new Uint8Array(n);
    this.arg = new Int32Array(n);
    this.out = new Int32Array(n);
    this.out2 = new Int32Array(n);
    const sets: { re: RegExp; ascii: Uint8Array }[] = [];
    for (const [i, st] of b.states.entries()) {
      this.op[i] = st.op;
      this.out[i] = st.out;
      this.out2[i] = st.out2;
      if (st.op === Op.Char) this.arg[i] = st.cp;
      else if (st.op === Op.Set) {
        this.arg[i] = sets.length;
        sets.push({ re: st.re!, ascii: asciiTable(st.re!) });
      } else if (st.op === Op.Assert)
        this.arg[i] = ASSERT_KINDS.indexOf(st.kind as (typeof ASSERT_KINDS)[number]);
    }
    this.sets = sets;
    this.mark = new Int32Array(n).fill(-1);
    this.current = new Int32Array(n);
    this.next = new Int32Array(n);
    this.stack = new Int32Array(2 * n + 2);
  }

  toString(): string {
    return `/${this.source}/u`;
  }

  /**
   * Adds the states reachable from `from` without reading (through splits and assertions that hold
   * at `pos`) to `list` after its first `length` entries; the new length, or -1 when one of them
   * is the match.
   */
  private closure(list: Int32Array, length: number, from: number, input: string, pos: number): number {
    const { op, out, out2, mark, stack } = this;
    const gen = this.gen;
    let top = 0;
    stack[top++] = from;
    while (top > 0) {
      const s = stack[--top]!;
      if (mark[s] === gen) continue;
      mark[s] = gen;
      switch (op[s]) {
        case Op.Match:
          return -1;
        case Op.Split:
          stack[top++] = out2[s]!;
          stack[top++] = out[s]!;
          break;
        case Op.Assert:
          if (holds(this.arg[s]!, input, pos)) stack[top++] = out[s]!;
          break;
        default:
          list[length++] = s;
      }
    }
    return length;
  }

  private reads(s: number, cp: number): boolean {
    if (this.op[s] === Op.Char) return this.arg[s] === cp;
    const set = this.sets[this.arg[s]!]!;
    return cp < 128 ? set.ascii[cp] === 1 : set.re.test(String.fromCodePoint(cp));
  }

  test(input: string): boolean {
    // one generation per position; start again well before the marks' Int32 range ends
    if (this.gen + input.length + 2 > 0x3fffffff) {
      this.mark.fill(-1);
      this.gen = 0;
    }
    this.gen++;
    let current = this.current;
    let next = this.next;
    let count = this.closure(current, 0, this.start, input, 0);
    if (count < 0) return true;
    for (let pos = 0; pos < input.length; ) {
      if (count === 0 && this.anchored) return false;
      const cp = input.codePointAt(pos)!;
      const after = pos + (cp > 0xffff ? 2 : 1);
      this.gen++;
      let nextCount = 0;
      for (let k = 0; k < count; k++) {
        const s = current[k]!;
        if (this.reads(s, cp)) {
          nextCount = this.closure(next, nextCount, this.out[s]!, input, after);
          if (nextCount < 0) return true;
        }
      }
      // a search, not an anchored match: a thread may start at every position
      if (!this.anchored) {
        nextCount = this.closure(next, nextCount, this.start, input, after);
        if (nextCount < 0) return true;
      }
      [current, next] = [next, current];
      count = nextCount;
      pos = after;
    }
    return false;
  }
}

/** `^`, `$`, `\b`, `\B` at `pos` (a UTF-16 index; without the `m` flag). */
function holds(kind: number, input: string, pos: number): boolean {
  if (kind === 0) return pos === 0;
  if (kind === 1) return pos === input.length;
  const before = pos > 0 && isWordChar(input.charCodeAt(pos - 1));
  const after = pos < input.length && isWordChar(input.charCodeAt(pos));
  return kind === 2 ? before !== after : before === after;
}

/**
 * Compiles a pattern for linear-time matching, or throws a `WritError`: `ERR_REGEX_INVALID` (not
 * a regular expression), `ERR_REGEX_UNSUPPORTED` (backreference, lookaround), `ERR_REGEX_TOO_LARGE`.
 */
export function linearRegex(source: string): LinearRegex {
  return new LinearRegex(source);
}

/**
 * The same, shaped as Ajv's `code.regExp` option, so the `pattern` and `patternProperties` of a
 * JSON Schema are matched in linear time too. Only the `u` flag is accepted (Ajv's default).
 */
export const linearRegExpEngine: ((pattern: string, flags: string) => RegexLike) & { code: string } =
  Object.assign(
    (pattern: string, flags: string): RegexLike => {
      if (flags !== "u" && flags !== "")
        throw new TypeError(`unsupported regular expression flags ${q(flags)}`);
      return linearRegex(pattern);
    },
    { code: "linearRegex" },
  );
