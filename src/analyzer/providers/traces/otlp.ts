/**
 * Agent traces: OpenTelemetry GenAI spans as OTLP JSON (`{resourceSpans: [{resource, scopeSpans:
 * [{spans}]}]}`, one document or one per line). Tool calls are `execute_tool` spans (or any span
 * with `gen_ai.tool.name`); the agent is `gen_ai.agent.name` (or `.id`, or the resource's
 * `service.name`); the prompt context is `gen_ai.conversation.id` or `writ.prompt_context`;
 * arguments are `gen_ai.tool.call.arguments`. Request ids the call caused (`writ.request_ids`,
 * `aws.request_id`, `k8s.audit_id`) join it to cloud and cluster events exactly; otherwise the
 * engine joins by where it ran — the resource attributes `k8s.pod.name`, `k8s.namespace.name`,
 * `k8s.deployment.name`, `k8s.statefulset.name`, `k8s.daemonset.name`, `k8s.cronjob.name`,
 * `k8s.job.name` (src/analyzer/join.ts) — and time, or by agent and time when they are absent.
 * Whether a call read untrusted content is decided in join.ts (writ.yaml's `untrustedInputs`).
 */
import { problem } from "../../input.js";
import { defaultUntrusted } from "../../join.js";
import type {
  Importer,
  ImportOptions,
  ImportResult,
  InputFile,
  InputProblem,
  K8sResource,
  ToolCall,
} from "../../model.js";
import { EMPTY_FRAGMENT } from "../../model.js";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function anyValue(v: unknown): unknown {
  if (!isObject(v)) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if (isObject(v.arrayValue))
    return (Array.isArray(v.arrayValue.values) ? v.arrayValue.values : []).map(anyValue);
  if (isObject(v.kvlistValue)) return attrs(v.kvlistValue.values);
  return undefined;
}

function attrs(list: unknown): Obj {
  const out: Obj = {};
  if (!Array.isArray(list)) return out;
  for (const kv of list) if (isObject(kv) && typeof kv.key === "string") out[kv.key] = anyValue(kv.value);
  return out;
}

const nanosToMs = (v: unknown): number => {
  // Whole milliseconds are the digits before the last six (no BigInt: this runs once per span).
  if (typeof v === "string" && /^\d+$/.test(v)) return v.length <= 6 ? 0 : Number(v.slice(0, -6));
  if (typeof v === "number") return Math.floor(v / 1e6);
  return Number.NaN;
};

/** The OTel Kubernetes resource attributes naming a workload, most specific controller first. */
const WORKLOAD_ATTRS: readonly [string, string][] = [
  ["k8s.deployment.name", "Deployment"],
  ["k8s.statefulset.name", "StatefulSet"],
  ["k8s.daemonset.name", "DaemonSet"],
  ["k8s.cronjob.name", "CronJob"],
  ["k8s.job.name", "Job"],
];

function runsIn(res: Obj, span: Obj): K8sResource | undefined {
  const namespace = str(span["k8s.namespace.name"]) ?? str(res["k8s.namespace.name"]);
  const pod = str(span["k8s.pod.name"]) ?? str(res["k8s.pod.name"]);
  let workload: K8sResource["workload"];
  for (const [k, kind] of WORKLOAD_ATTRS) {
    const name = str(span[k]) ?? str(res[k]);
    if (name !== undefined) {
      workload = { kind, name };
      break;
    }
  }
  return namespace || pod || workload ? { namespace, pod, workload } : undefined;
}

/** Kept for `untrustedInputs` matchers: scalars, not the call's arguments or result, at most 1 KiB. */
function scalars(a: Obj): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(a)) {
    if (k === "gen_ai.tool.call.arguments" || k === "gen_ai.tool.call.result") continue;
    if ((typeof v === "string" && v.length <= 1024) || typeof v === "number" || typeof v === "boolean")
      out[k] = v;
  }
  return out;
}

const REQUEST_ID_ATTRS = ["writ.request_ids", "aws.request_id", "k8s.audit_id", "writ.request_id"];

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

export function toolCallsOf(
  doc: unknown,
  file: string,
  line: number | undefined,
  problems: InputProblem[],
): ToolCall[] {
  const out: ToolCall[] = [];
  if (!isObject(doc) || !Array.isArray(doc.resourceSpans)) {
    problems.push(problem("ERR_OTLP_SHAPE", { file, line }, "not OTLP JSON: no `resourceSpans`; skipped"));
    return out;
  }
  for (const rs of doc.resourceSpans) {
    if (!isObject(rs) || !Array.isArray(rs.scopeSpans)) continue;
    let res: Obj | undefined;
    for (const ss of rs.scopeSpans) {
      if (!isObject(ss) || !Array.isArray(ss.spans)) continue;
      for (const span of ss.spans) {
        if (!isObject(span)) continue;
        const a = attrs(span.attributes);
        const tool = str(a["gen_ai.tool.name"]);
        const op = str(a["gen_ai.operation.name"]);
        if (!tool || (op !== undefined && op !== "execute_tool")) continue;
        res ??= attrs(isObject(rs.resource) ? rs.resource.attributes : undefined);
        const agent =
          str(a["gen_ai.agent.name"]) ??
          str(a["gen_ai.agent.id"]) ??
          str(res["gen_ai.agent.name"]) ??
          str(res["service.name"]);
        const start = nanosToMs(span.startTimeUnixNano);
        const end = nanosToMs(span.endTimeUnixNano);
        if (!agent || Number.isNaN(start)) {
          problems.push(
            problem(
              "WARN_OTLP_SPAN",
              { file, line },
              `tool span \`${String(span.spanId)}\` has no agent or start time; skipped`,
              "warning",
            ),
          );
          continue;
        }
        let args: unknown = a["gen_ai.tool.call.arguments"];
        if (typeof args === "string") {
          try {
            args = JSON.parse(args);
          } catch {}
        }
        const ids: string[] = [];
        for (const k of REQUEST_ID_ATTRS) {
          const v = a[k];
          if (typeof v === "string") {
            if (v !== "") ids.push(v);
          } else if (Array.isArray(v)) for (const x of v) if (typeof x === "string" && x !== "") ids.push(x);
        }
        const server = str(a["mcp.server.name"]) ?? str(a["writ.mcp_server"]);
        const name = server && !tool.includes(":") ? `${server}:${tool}` : tool;
        const attributes = scalars(a);
        out.push({
          kind: "tool-call",
          traceId: String(span.traceId ?? ""),
          spanId: String(span.spanId ?? ""),
          start,
          end: Number.isNaN(end) ? start : end,
          agent,
          tool: name,
          arguments: args,
          context: str(a["writ.prompt_context"]) ?? str(a["gen_ai.conversation.id"]),
          playbook: str(a["writ.playbook"]),
          requestIds: ids,
          untrustedSource: defaultUntrusted(name, attributes),
          attributes,
          runsIn: runsIn(res, a),
          source: { file, line },
        });
      }
    }
  }
  return out;
}

export const otlpTraceImporter: Importer = {
  name: "otlp-traces",
  detect(file: InputFile): boolean {
    return /\.(json|jsonl)$/i.test(file.path) && /"resourceSpans"\s*:/.test(file.head);
  },
  async import(file: InputFile, opts?: ImportOptions): Promise<ImportResult> {
    const problems: InputProblem[] = [];
    const toolCalls: ToolCall[] = [];
    const sink = opts?.onToolCall ?? ((c: ToolCall) => toolCalls.push(c));
    const add = (doc: unknown, line: number) => {
      for (const c of toolCallsOf(doc, file.path, line, problems)) sink(c);
    };
    const badLine = (line: number) =>
      problems.push(
        problem(
          "ERR_INPUT_JSON_LINE",
          { file: file.path, line },
          "line is not valid JSON (truncated?); skipped",
        ),
      );
    // JSON lines (one export request per line) are streamed: a large export is never one string.
    // A first line that is not a whole document means one document, pretty-printed.
    let mode: "lines" | "whole" | undefined;
    let n = 0;
    for await (const l of file.lines()) {
      n++;
      if (l.trim() === "") continue;
      let doc: unknown;
      try {
        doc = JSON.parse(l);
      } catch {
        if (mode === undefined) {
          mode = "whole";
          break;
        }
        badLine(n);
        continue;
      }
      mode = "lines";
      add(doc, n);
    }
    if (mode === "whole") {
      let text: string;
      try {
        text = await file.text();
      } catch {
        problems.push(
          problem(
            "ERR_INPUT_TOO_LARGE",
            { file: file.path },
            "one JSON document too large to read whole; export JSON lines (one request per line) instead",
          ),
        );
        return { fragment: { ...EMPTY_FRAGMENT, toolCalls }, problems };
      }
      try {
        add(JSON.parse(text), 1);
      } catch {
        // JSON lines whose first line is broken: every other line still counts.
        text.split("\n").forEach((l, i) => {
          if (l.trim() === "") return;
          try {
            add(JSON.parse(l), i + 1);
          } catch {
            badLine(i + 1);
          }
        });
      }
    }
    return { fragment: { ...EMPTY_FRAGMENT, toolCalls }, problems };
  },
  /** The calls of the given lines, parsed again (JSON lines; a whole document is line 1). */
  async reload(file: InputFile, lines: ReadonlySet<number>): Promise<Map<number, ToolCall[]>> {
    const out = new Map<number, ToolCall[]>();
    const ignored: InputProblem[] = [];
    const last = Math.max(...lines);
    let n = 0;
    let whole = false;
    for await (const l of file.lines()) {
      n++;
      if (!lines.has(n)) {
        if (n >= last) break;
        continue;
      }
      try {
        out.set(n, toolCallsOf(JSON.parse(l), file.path, n, ignored));
      } catch {
        whole = n === 1 || whole;
      }
      if (n >= last) break;
    }
    if (whole || (lines.has(1) && !out.has(1))) {
      try {
        out.set(1, toolCallsOf(JSON.parse(await file.text()), file.path, 1, ignored));
      } catch {
        // Not one document either: the lines read above are all there is.
      }
    }
    return out;
  },
};
