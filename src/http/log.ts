/**
 * `writ serve`'s log: pino, one JSON object a line, created by the composition root and passed in
 * (there is no process-wide logger). What it writes (docs/operating.md#logs):
 *
 *   every request  {"level":"info","event":"http.request","method":"POST","path":"/env/dev/token",
 *                   "status":400,"durationMs":3.1,"agent":"release-bot","writ":"…","reason":"…"}
 *   every 5xx      {"level":"error","event":"http.request_failed",…,"error":{name,code,message,cause},
 *                   "stack":"…"}
 *   start, stop    {"event":"server.start",…} / {"event":"server.stop"}
 *
 * Never logged: headers (bearer tokens, DPoP proofs, client assertions), bodies, query strings.
 * Messages and stacks are cut to a bounded length and anything shaped like a JWT in them is
 * replaced; pino's `redact` censors the fields that carry secrets should one ever be passed in.
 *
 * The fields a request line names beyond its URL (agent, writ, reason) are not read from the
 * request: the parts report them as they judge it, through `RequestContext.annotate` (the
 * composition root calls it from the audit log's append, which every judgement goes through).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Fields censored wherever they appear at the top level or one level down: what writ never logs,
 * in case a caller ever passes an object holding one.
 */
const SECRET_FIELDS = [
  "authorization",
  "Authorization",
  "cookie",
  "dpop",
  "DPoP",
  "access_token",
  "subject_token",
  "actor_token",
  "refresh_token",
  "token",
  "client_assertion",
  "client_secret",
  "assertion",
  "adminToken",
  "pdpToken",
  "metricsToken",
  "password",
  "secret",
  "privateJwk",
  "private_jwk",
  "privateKey",
  "headers",
  "body",
];
export const REDACT_PATHS: readonly string[] = [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`)];

export interface CreateLoggerOptions {
  /** Default `info`. */
  readonly level?: LogLevel | undefined;
  /** Where lines go (default: stderr). */
  readonly destination?: DestinationStream | undefined;
  /** Human-readable lines (pino-pretty) instead of JSON: for a terminal. */
  readonly pretty?: boolean | undefined;
}

const BASE_OPTIONS: LoggerOptions = {
  base: undefined,
  timestamp: () => `,"time":"${new Date().toISOString()}"`,
  formatters: { level: (label) => ({ level: label }) },
  redact: { paths: [...REDACT_PATHS], censor: "[redacted]" },
};

/** A logger writing JSON lines (or, `pretty`, readable ones) to `destination`. */
export async function createLogger(opts: CreateLoggerOptions = {}): Promise<Logger> {
  const options = { ...BASE_OPTIONS, level: opts.level ?? "info" };
  if (opts.pretty) {
    const { PinoPretty } = await import("pino-pretty");
    const stream = PinoPretty({
      colorize: true,
      sync: true,
      translateTime: "SYS:HH:MM:ss.l",
      // the request line's headline; its other fields below it
      messageFormat: "{event}{if method} {method} {path} {status} {durationMs} ms{end}{if msg} — {msg}{end}",
      ignore: "event,method,path,status,durationMs",
      messageKey: "msg",
      ...(opts.destination === undefined ? { destination: 2 } : {}),
    });
    if (opts.destination !== undefined) stream.pipe(opts.destination as unknown as NodeJS.WritableStream);
    return pino(options, stream);
  }
  return pino(options, opts.destination ?? pino.destination({ dest: 2, sync: true }));
}

/** A destination handing each line (without its newline) to `sink`: the CLI's stderr, a test's array. */
export function lineDestination(sink: (line: string) => void): DestinationStream {
  return { write: (s: string) => sink(s.endsWith("\n") ? s.slice(0, -1) : s) };
}

const MAX_MESSAGE = 500;
const MAX_STACK = 4000;
const MAX_CAUSES = 3;
/** A compact JWS (a token, an assertion, a proof) anywhere in a message. */
const JWS = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

function clean(text: string, max = MAX_MESSAGE): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return cut.replace(JWS, "[token]");
}

interface ErrorSummary {
  name: string;
  code?: string;
  message: string;
  cause?: ErrorSummary;
}

/** Name, code and message of an error and its first causes; nothing else of it is read. */
export function summarizeError(err: unknown, depth = 0): ErrorSummary {
  if (!(err instanceof Error)) return { name: typeof err, message: clean(String(err)) };
  const code = (err as { code?: unknown }).code;
  const out: ErrorSummary = {
    name: err.name,
    ...(typeof code === "string" || typeof code === "number" ? { code: String(code) } : {}),
    message: clean(err.message),
  };
  if (err.cause !== undefined && depth + 1 < MAX_CAUSES) out.cause = summarizeError(err.cause, depth + 1);
  return out;
}

/** The stack of an error, cut and with tokens replaced; undefined when it has none. */
export function stackOf(err: unknown): string | undefined {
  return err instanceof Error && typeof err.stack === "string" ? clean(err.stack, MAX_STACK) : undefined;
}

/** A path for the log: the URL's path only (never its query), tokens replaced, bounded. */
export function logPath(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = "?";
  }
  return clean(path, 300);
}

/** What a request line names beyond the URL and status, as the parts report it. */
export interface RequestFields {
  agent?: string;
  writ?: string;
  reason?: string;
  /** Rules in shadow mode that would have denied (docs/shadow.md). */
  shadow?: string;
}

/**
 * The fields of the request being handled, per request (AsyncLocalStorage): `annotate` called
 * anywhere under `run` adds to that request's line, and is a no-op outside a request.
 */
export interface RequestContext {
  run<T>(fields: RequestFields, work: () => Promise<T>): Promise<T>;
  annotate(fields: Readonly<RequestFields>): void;
}

const MAX_FIELD = 200;

export function requestContext(): RequestContext {
  const storage = new AsyncLocalStorage<RequestFields>();
  return {
    run: (fields, work) => storage.run(fields, work),
    annotate(fields) {
      const current = storage.getStore();
      if (current === undefined) return;
      for (const key of ["agent", "writ", "reason", "shadow"] as const) {
        const v = fields[key];
        // the first value wins: the agent the request was judged for, not one named later
        if (typeof v === "string" && v.length > 0 && current[key] === undefined) {
          current[key] = clean(v, MAX_FIELD);
        }
      }
    },
  };
}

/** The one-line summary of a failed request (5xx). */
export function failureFields(r: {
  method: string;
  path: string;
  status: number;
  requestId?: string | undefined;
  error: unknown;
}): Record<string, unknown> {
  return {
    event: "http.request_failed",
    method: r.method,
    path: r.path,
    status: r.status,
    ...(r.requestId === undefined ? {} : { requestId: clean(r.requestId, MAX_FIELD) }),
    error:
      r.error === undefined
        ? { name: "none", message: "the handler answered 500 without an error" }
        : summarizeError(r.error),
    ...(stackOf(r.error) === undefined ? {} : { stack: stackOf(r.error) }),
  };
}
