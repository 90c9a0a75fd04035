/**
 * The one line `writ serve` writes to stderr when a request fails with a 5xx: JSON, so an operator's
 * log tooling can read it, and the cause of the failure without the request's secrets.
 *
 *   {"level":"error","event":"http.request_failed","time":"…","method":"POST","path":"/env/dev/token",
 *    "status":500,"requestId":"…","error":{"name":"WritError","code":"ERR_STORE","message":"…",
 *    "cause":{"name":"error","code":"22021","message":"…"}}}
 *
 * Never logged: headers (bearer tokens, DPoP proofs, client assertions), bodies, query strings.
 * Messages are cut to a bounded length, and anything shaped like a JWT in them is replaced.
 */

/** Where the line goes: stderr unless the app is given another sink (tests). */
export type LogSink = (line: string) => void;

export const stderrSink: LogSink = (line) => {
  process.stderr.write(`${line}\n`);
};

const MAX_MESSAGE = 500;
const MAX_CAUSES = 3;
/** A compact JWS (a token, an assertion, a proof) anywhere in a message. */
const JWS = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;

function clean(text: string): string {
  const cut = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
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

export interface FailedRequest {
  readonly method: string;
  /** The URL's path only: never its query. */
  readonly path: string;
  readonly status: number;
  readonly requestId?: string | undefined;
  readonly error: unknown;
}

/** The log line for a failed request. */
export function failureLine(r: FailedRequest, now = new Date()): string {
  return JSON.stringify({
    level: "error",
    event: "http.request_failed",
    time: now.toISOString(),
    method: r.method,
    path: clean(r.path),
    status: r.status,
    ...(r.requestId === undefined ? {} : { requestId: clean(r.requestId).slice(0, 200) }),
    error:
      r.error === undefined
        ? { name: "none", message: "the handler answered 500 without an error" }
        : summarizeError(r.error),
  });
}
