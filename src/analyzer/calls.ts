/**
 * Tool calls, held compactly: a large trace export is never kept as objects. Each call's
 * judgement needs only what it has in common with many others — agent, tool, prompt context,
 * claimed playbook, where it ran, whether it read untrusted content — so that is one shared
 * signature per distinct combination, aggregated as spans are read (count, first and last seen, a
 * few span ids). What stays per call is what the time join cannot do without: its interval, its
 * signature and where it is in its file (about 30 bytes, in typed arrays).
 *
 * A call cited as evidence (span id, arguments, attributes) is read again from its file, only
 * the lines needed, once every event is judged (`hydrate`). Calls handed over whole (an importer
 * that returns them in its fragment, tests) are kept whole and need no second read.
 */
import type { InputFile, K8sResource, ToolCall } from "./model.js";

/** What many calls share: one per distinct (agent, tool, context, playbook, resource, untrusted). */
export interface CallSignature {
  readonly agent: string;
  readonly tool: string;
  readonly context: string | undefined;
  readonly playbook: string | undefined;
  readonly runsIn: K8sResource | undefined;
  readonly untrusted: boolean;
  count: number;
  first: number;
  last: number;
  /** The first few span ids (at most `SAMPLE_SPANS`). */
  readonly spans: string[];
  /** Join caches (join.ts), per the namespace they were computed for. */
  cacheNs?: string | undefined;
  podId?: string | undefined;
  workloadId?: string | undefined;
  /** Untrusted reads of this signature's prompt context (undefined: not looked up yet). */
  taints?: Int32Array | null | undefined;
}

export const SAMPLE_SPANS = 3;

/** Re-reads the tool calls of some lines of a file, in the order the importer gave them. */
export type CallReloader = (
  file: InputFile,
  lines: ReadonlySet<number>,
) => Promise<ReadonlyMap<number, readonly ToolCall[]>>;

interface Source {
  readonly file: InputFile;
  readonly reload: CallReloader;
}

/** Calls of one agent or one namespace, by start time, and their longest span. */
export interface CallIndex {
  readonly calls: Int32Array;
  readonly maxSpan: number;
}

class Growable<T extends Float64Array | Int32Array> {
  array: T;
  constructor(private readonly make: (n: number) => T) {
    this.array = make(1024);
  }
  set(i: number, v: number): void {
    if (i >= this.array.length) {
      const next = this.make(this.array.length * 2);
      next.set(this.array);
      this.array = next;
    }
    this.array[i] = v;
  }
}

export class CallStore {
  private n = 0;
  private readonly starts = new Growable((k) => new Float64Array(k));
  private readonly ends = new Growable((k) => new Float64Array(k));
  private readonly sigOf = new Growable((k) => new Int32Array(k));
  private readonly fileOf = new Growable((k) => new Int32Array(k));
  private readonly lineOf = new Growable((k) => new Int32Array(k));
  private readonly ordinalOf = new Growable((k) => new Int32Array(k));
  private readonly sigs: CallSignature[] = [];
  private readonly sigIndex = new Map<string, number>();
  private readonly files: string[] = [];
  private readonly fileIndex = new Map<string, number>();
  private readonly sources = new Map<string, Source>();
  /** Calls held whole: handed over whole, or read again for evidence. */
  private readonly whole = new Map<number, ToolCall>();
  private readonly requests = new Map<string, number[]>();
  private last = { file: -1, line: -1, ordinal: -1 };
  private indexed:
    | {
        byAgent: Map<string, CallIndex>;
        byNamespace: Map<string, CallIndex>;
        tainted: Map<string, Int32Array>;
      }
    | undefined;

  get size(): number {
    return this.n;
  }

  /** Where calls of `file` can be read again (the importer's `reload`). */
  source(file: InputFile, reload: CallReloader): void {
    this.sources.set(file.path, { file, reload });
  }

  /**
   * One call, as it is read. `keep`: hold it whole (no second read possible). Calls of one line
   * must arrive in the importer's order: their ordinal finds them again.
   */
  add(c: ToolCall, keep: boolean): number {
    const i = this.n++;
    const r = c.runsIn;
    const key = `${c.agent}\u0000${c.tool}\u0000${c.context ?? ""}\u0000${c.playbook ?? ""}\u0000${r?.namespace ?? ""}\u0000${r?.pod ?? ""}\u0000${r?.workload?.kind ?? ""}\u0000${r?.workload?.name ?? ""}\u0000${c.untrustedSource ? 1 : 0}`;
    let s = this.sigIndex.get(key);
    if (s === undefined) {
      s = this.sigs.length;
      this.sigIndex.set(key, s);
      this.sigs.push({
        agent: c.agent,
        tool: c.tool,
        context: c.context,
        playbook: c.playbook,
        runsIn: r,
        untrusted: c.untrustedSource,
        count: 0,
        first: c.start,
        last: c.start,
        spans: [],
      });
    }
    const sig = this.sigs[s]!;
    sig.count++;
    if (c.start < sig.first) sig.first = c.start;
    if (c.start > sig.last) sig.last = c.start;
    if (sig.spans.length < SAMPLE_SPANS && c.spanId) sig.spans.push(c.spanId);
    let f = this.fileIndex.get(c.source.file);
    if (f === undefined) {
      f = this.files.length;
      this.files.push(c.source.file);
      this.fileIndex.set(c.source.file, f);
    }
    const line = c.source.line ?? 0;
    const ordinal = this.last.file === f && this.last.line === line ? this.last.ordinal + 1 : 0;
    this.last = { file: f, line, ordinal };
    this.starts.set(i, c.start);
    this.ends.set(i, c.end);
    this.sigOf.set(i, s);
    this.fileOf.set(i, f);
    this.lineOf.set(i, line);
    this.ordinalOf.set(i, ordinal);
    for (const id of c.requestIds) (this.requests.get(id) ?? this.requests.set(id, []).get(id)!).push(i);
    if (keep) this.whole.set(i, c);
    if (this.indexed) {
      this.indexed = undefined;
      for (const x of this.sigs) x.taints = undefined;
    }
    return i;
  }

  start(i: number): number {
    return this.starts.array[i]!;
  }
  end(i: number): number {
    return this.ends.array[i]!;
  }
  signature(i: number): CallSignature {
    return this.sigs[this.sigOf.array[i]!]!;
  }
  /** Calls that carry the request id (`k8s.audit_id`, `aws.request_id`, …). */
  byRequest(id: string): readonly number[] {
    return this.requests.get(id) ?? [];
  }

  private index() {
    if (this.indexed) return this.indexed;
    const n = this.n;
    const starts = this.starts.array;
    let order = new Int32Array(n);
    let sorted = true;
    for (let i = 0; i < n; i++) {
      order[i] = i;
      if (i > 0 && starts[i]! < starts[i - 1]!) sorted = false;
    }
    if (!sorted) order = order.sort((a, b) => starts[a]! - starts[b]! || a - b);
    const group = (keyOf: (s: CallSignature) => string | undefined): Map<string, CallIndex> => {
      const counts = new Map<string, number>();
      const keys: (string | undefined)[] = this.sigs.map(keyOf);
      const sigs = this.sigOf.array;
      for (let k = 0; k < n; k++) {
        const key = keys[sigs[order[k]!]!];
        if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const out = new Map<string, { calls: Int32Array; fill: number; maxSpan: number }>();
      for (const [key, c] of counts) out.set(key, { calls: new Int32Array(c), fill: 0, maxSpan: 0 });
      for (let k = 0; k < n; k++) {
        const i = order[k]!;
        const key = keys[sigs[i]!];
        if (key === undefined) continue;
        const x = out.get(key)!;
        x.calls[x.fill++] = i;
        const span = this.ends.array[i]! - starts[i]!;
        if (span > x.maxSpan) x.maxSpan = span;
      }
      return new Map([...out].map(([k, x]) => [k, { calls: x.calls, maxSpan: x.maxSpan }]));
    };
    const byAgent = group((s) => s.agent);
    const byNamespace = group((s) => s.runsIn?.namespace);
    const taintedIdx = group((s) => (s.untrusted && s.context ? `${s.agent}\u0000${s.context}` : undefined));
    const tainted = new Map([...taintedIdx].map(([k, x]) => [k, x.calls]));
    this.indexed = { byAgent, byNamespace, tainted };
    return this.indexed;
  }

  byAgent(agent: string): CallIndex | undefined {
    return this.index().byAgent.get(agent);
  }
  byNamespace(ns: string): CallIndex | undefined {
    return this.index().byNamespace.get(ns);
  }
  /** Untrusted reads of the agent's prompt context, by start time. */
  tainted(agent: string, context: string): Int32Array | undefined {
    return this.index().tainted.get(`${agent}\u0000${context}`);
  }

  /**
   * Reads the given calls again from their files (only the lines they are on), so `call` can give
   * them whole. Returns problems as messages (a file changed or gone since it was read).
   */
  async hydrate(calls: Iterable<number>): Promise<string[]> {
    const byFile = new Map<number, Map<number, number[]>>();
    for (const i of calls) {
      if (this.whole.has(i)) continue;
      const f = this.fileOf.array[i]!;
      const lines = byFile.get(f) ?? byFile.set(f, new Map()).get(f)!;
      const line = this.lineOf.array[i]!;
      (lines.get(line) ?? lines.set(line, []).get(line)!).push(i);
    }
    const problems: string[] = [];
    for (const [f, lines] of byFile) {
      const name = this.files[f]!;
      const src = this.sources.get(name);
      const got = src ? await src.reload(src.file, new Set(lines.keys())) : new Map();
      for (const [line, ids] of lines)
        for (const i of ids) {
          const c = got.get(line)?.[this.ordinalOf.array[i]!];
          const sig = this.signature(i);
          if (c && c.agent === sig.agent && c.tool === sig.tool && c.start === this.start(i)) {
            this.whole.set(i, { ...c, untrustedSource: sig.untrusted });
          } else {
            if (src) problems.push(`${name}:${line}: the tool call changed since it was read`);
            this.whole.set(i, this.light(i));
          }
        }
    }
    return problems;
  }

  /** The call whole: as handed over or read again; else what the signature knows (no span id). */
  call(i: number): ToolCall {
    return this.whole.get(i) ?? this.light(i);
  }

  private light(i: number): ToolCall {
    const s = this.signature(i);
    const file = this.files[this.fileOf.array[i]!]!;
    const line = this.lineOf.array[i]!;
    return {
      kind: "tool-call",
      traceId: "",
      spanId: `${file}:${line}#${this.ordinalOf.array[i]}`,
      start: this.start(i),
      end: this.end(i),
      agent: s.agent,
      tool: s.tool,
      context: s.context,
      playbook: s.playbook,
      requestIds: [],
      untrustedSource: s.untrusted,
      runsIn: s.runsIn,
      source: { file, line: line || undefined },
    };
  }
}
