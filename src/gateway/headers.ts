/**
 * The MCP routing headers of Streamable HTTP (MCP 2026-07-28, SEP-2243): `Mcp-Method` mirrors the
 * JSON-RPC `method`, `Mcp-Name` the `params.name` of `tools/call` and `prompts/get` or the
 * `params.uri` of `resources/read|subscribe|unsubscribe`. Intermediaries route, meter and filter
 * on them without reading the body, so a request whose headers say one thing and whose body does
 * another is refused: what a middlebox allowed must be what the gateway decides on. A value
 * outside printable ASCII comes as `=?base64?<UTF-8 in base64>?=`.
 *
 * Both headers are optional here (clients of earlier revisions send neither); once `Mcp-Method`
 * is sent, a method that names something must come with its `Mcp-Name`.
 */

export const MCP_METHOD_HEADER = "mcp-method";
export const MCP_NAME_HEADER = "mcp-name";

const NAMED: Readonly<Record<string, "name" | "uri">> = {
  "tools/call": "name",
  "prompts/get": "name",
  "resources/read": "uri",
  "resources/subscribe": "uri",
  "resources/unsubscribe": "uri",
};

function decode(value: string): string | undefined {
  const m = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/.exec(value);
  if (!m) return value;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(m[1]!, "base64"));
  } catch {
    return undefined;
  }
}

/** Do the request's routing headers carry anything to check? */
export function hasRoutingHeaders(headers: Headers): boolean {
  return headers.has(MCP_METHOD_HEADER) || headers.has(MCP_NAME_HEADER);
}

/**
 * Why the headers disagree with the body (a message for `header_mismatch`), or undefined when
 * they agree or are absent. `body` is the parsed JSON-RPC message; a body that is not JSON is left
 * to the transport (a parse error).
 */
export function routingMismatch(headers: Headers, body: unknown): string | undefined {
  const method = headers.get(MCP_METHOD_HEADER);
  const rawName = headers.get(MCP_NAME_HEADER);
  if (method === null && rawName === null) return undefined;
  if (typeof body !== "object" || body === null) return undefined;
  if (Array.isArray(body)) return "routing headers name one message; the body is a batch";
  const msg = body as { method?: unknown; params?: unknown };
  if (method === null) return "`Mcp-Name` without `Mcp-Method`";
  if (typeof msg.method !== "string" || msg.method !== method) {
    return `\`Mcp-Method\` says \`${method.slice(0, 100)}\`, the body ${typeof msg.method === "string" ? `\`${msg.method.slice(0, 100)}\`` : "has no method"}`;
  }
  const field = NAMED[method];
  const params = (typeof msg.params === "object" && msg.params !== null ? msg.params : {}) as Record<
    string,
    unknown
  >;
  const bodyName = field === undefined ? undefined : params[field];
  if (rawName === null) {
    return bodyName === undefined ? undefined : `\`${method}\` needs \`Mcp-Name\``;
  }
  const name = decode(rawName);
  if (name === undefined) return "`Mcp-Name` is not valid base64 UTF-8";
  if (typeof bodyName !== "string" || bodyName !== name) {
    return `\`Mcp-Name\` does not match the body's \`params.${field ?? "name"}\``;
  }
  return undefined;
}

/** A header value: printable ASCII as it is, anything else as `=?base64?…?=` (no CR/LF can pass). */
export function encodeHeaderValue(value: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value)
    ? value
    : `=?base64?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

/**
 * A fetch for an upstream's Streamable HTTP transport that mirrors each message's method and name
 * into `Mcp-Method` and `Mcp-Name`, so proxies in front of the upstream can route on them.
 */
export function withRoutingHeaders(inner: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    if (init?.method !== "POST" || typeof init.body !== "string") return inner(input, init);
    let msg: unknown;
    try {
      msg = JSON.parse(init.body);
    } catch {
      return inner(input, init);
    }
    const m = msg as { method?: unknown; params?: Record<string, unknown> };
    if (typeof msg !== "object" || msg === null || Array.isArray(msg) || typeof m.method !== "string") {
      return inner(input, init);
    }
    const headers = new Headers(init.headers);
    headers.set("Mcp-Method", encodeHeaderValue(m.method));
    const field = NAMED[m.method];
    const name = field === undefined ? undefined : m.params?.[field];
    if (typeof name === "string") headers.set("Mcp-Name", encodeHeaderValue(name));
    return inner(input, { ...init, headers });
  };
}
