/** The one wire edge: RFC 9457 problems, OAuth 2 errors and JSON-RPC errors built in one place. */
import { describe, expect, it } from "vitest";
import {
  challenge,
  DOCS_URL,
  JSONRPC,
  jsonRpcError,
  oauthError,
  problem,
  problemType,
} from "../../src/http/problem.js";

describe("problem details (RFC 9457)", () => {
  it("a coded problem: its type is the code's documentation, with code, reason and retry_after", async () => {
    const res = problem({
      status: 409,
      code: "ERR_APPROVAL_CLOSED",
      reason: "approval_closed",
      detail: "the request is closed",
      instance: "/approvals/ar_1",
      retryAfter: 5,
    });
    expect(res.status).toBe(409);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.json()).toEqual({
      type: `${DOCS_URL}/errors.md#err_approval_closed`,
      title: "Conflict",
      status: 409,
      detail: "the request is closed",
      instance: "/approvals/ar_1",
      code: "ERR_APPROVAL_CLOSED",
      reason: "approval_closed",
      retry_after: 5,
    });
  });

  it("a reason alone names the type in reasons.md; nothing names it about:blank with the status phrase", async () => {
    expect(problemType("value_invalid")).toBe(`${DOCS_URL}/reasons.md#value_invalid`);
    const bare = await problem({ status: 413, detail: "too big" }).json();
    expect(bare).toEqual({ type: "about:blank", title: "Content Too Large", status: 413, detail: "too big" });
    const titled = await problem({
      status: 400,
      reason: "invalid_json",
      title: "Not JSON",
      detail: "x",
    }).json();
    expect(titled).toMatchObject({ title: "Not JSON", reason: "invalid_json" });
    expect(titled).not.toHaveProperty("code");
  });
});

describe("OAuth 2 errors (RFC 6749 §5.2)", () => {
  it("error, error_description and reason, never cached, with the caller's headers", async () => {
    const res = oauthError({
      status: 401,
      error: "invalid_client",
      description: "bad assertion",
      reason: "client_assertion_invalid",
      headers: { "www-authenticate": challenge("Bearer", { error: "invalid_client" }) },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_client"');
    expect(await res.json()).toEqual({
      error: "invalid_client",
      error_description: "bad assertion",
      reason: "client_assertion_invalid",
    });
  });

  it("a challenge's values are quoted-strings of printable ASCII: no quote, backslash or newline escapes", () => {
    const h = challenge("DPoP", {
      error: "invalid_token",
      error_description: 'a "b"\\c\nd é',
      algs: undefined,
    });
    expect(h).toBe(`DPoP error="invalid_token", error_description="a 'b''c?d ?"`);
    expect(challenge("Bearer")).toBe("Bearer");
  });
});

describe("JSON-RPC 2.0 errors", () => {
  it("{jsonrpc, id, error: {code, message, data}}; id null when the request's is unknown", async () => {
    const res = jsonRpcError({
      status: 400,
      code: JSONRPC.invalidRequest,
      message: "header_mismatch: Mcp-Method",
      data: { reason: "header_mismatch" },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32600, message: "header_mismatch: Mcp-Method", data: { reason: "header_mismatch" } },
    });
    const noData = await jsonRpcError({
      status: 404,
      id: 7,
      code: JSONRPC.sessionNotFound,
      message: "gone",
    }).json();
    expect(noData).toEqual({ jsonrpc: "2.0", id: 7, error: { code: -32001, message: "gone" } });
  });
});
