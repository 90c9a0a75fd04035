/**
 * Tool pins for operators: the admin routes a running `writ serve` answers (with its admin token,
 * as the broker's admin API), and the client the CLI uses when that server holds the store.
 *
 *   GET  /admin/v1/gateway/tools            every pin
 *   POST /admin/v1/gateway/tools/approve    { server, tool, hash?, by } → the pin, now pinned
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import { isWritError, q, textProblem, WritError } from "../core/index.js";
import type { WritErrorCode } from "../error-codes.js";
import { challenge, problem } from "../http/problem.js";
import type { Gateway } from "./gateway.js";
import { ERR_PIN_NOT_FOUND, type PinStore, type ToolPin } from "./pins.js";

export const PINS_PATH = "/admin/v1/gateway/tools";
export const ERR_PINS_UNREACHABLE = "ERR_PINS_UNREACHABLE";

/** What `writ tools` works on: the store's pins, or a running server's. */
export interface PinOperator {
  list(): Promise<readonly ToolPin[]>;
  approve(server: string, tool: string, opts: { by: string; hash?: string | undefined }): Promise<ToolPin>;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export function pinsApi(pins: PinStore, gateway: Gateway, adminToken: string): Hono {
  const app = new Hono();
  const admin = async (
    c: { req: { header(name: string): string | undefined } },
    next: () => Promise<void>,
  ) => {
    const bearer = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
    if (!timingSafeEqual(digest(bearer), digest(adminToken))) {
      return problem({
        status: 401,
        code: "ERR_ADMIN_TOKEN",
        detail: "admin token required",
        headers: { "www-authenticate": challenge("Bearer", { realm: "writ-admin" }) },
      });
    }
    await next();
  };
  app.use(PINS_PATH, admin);
  app.use(`${PINS_PATH}/*`, admin);
  app.get(PINS_PATH, async (c) => c.json({ pins: await pins.list() }));
  app.post(`${PINS_PATH}/approve`, async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    // no control characters, lone surrogates or over-long names: they would only fail in the store
    const str = (k: string) =>
      typeof body?.[k] === "string" &&
      (body[k] as string).length > 0 &&
      textProblem(body[k] as string, { max: 1000 }) === undefined
        ? (body[k] as string)
        : undefined;
    const server = str("server");
    const tool = str("tool");
    const by = str("by");
    if (!server || !tool || !by)
      return problem({ status: 400, code: "ERR_USAGE", detail: "give `server`, `tool` and `by`" });
    try {
      const pin = await pins.approve(server, tool, { by, hash: str("hash") });
      await gateway.refreshPins();
      return c.json(pin);
    } catch (err) {
      if (isWritError(err, ERR_PIN_NOT_FOUND))
        return problem({ status: 404, code: err.code, detail: err.message });
      throw err;
    }
  });
  return app;
}

const revive = (key: string, value: unknown) =>
  ["firstSeen", "seenAt", "approvedAt"].includes(key) && typeof value === "string" ? new Date(value) : value;

/** The pins of a running server, over its admin API. */
export function remotePins(baseUrl: string, token: string): PinOperator {
  const call = async <T>(method: "GET" | "POST", path: string, payload?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new WritError(
        ERR_PINS_UNREACHABLE,
        `the running writ serve at ${baseUrl} did not answer: ${(err as Error).message}`,
      );
    }
    const value = JSON.parse(await res.text(), revive) as Record<string, unknown>;
    if (!res.ok) {
      // a code the running writ serve answered: one of the same union, as the CLI is the same writ
      const code =
        typeof value.code === "string" && /^ERR_[A-Z0-9_]+$/.test(value.code)
          ? (value.code as WritErrorCode)
          : ERR_PINS_UNREACHABLE;
      throw new WritError(code, typeof value.detail === "string" ? value.detail : `answered ${res.status}`);
    }
    return value as T;
  };
  return {
    list: async () => (await call<{ pins: ToolPin[] }>("GET", PINS_PATH)).pins,
    approve: (server, tool, opts) =>
      call("POST", `${PINS_PATH}/approve`, { server, tool, by: opts.by, hash: opts.hash }),
  };
}

export function parseToolRef(ref: string): { server: string; tool: string } {
  const i = ref.indexOf(":");
  if (i <= 0 || i === ref.length - 1)
    throw new WritError("ERR_USAGE", `tool ${q(ref)}: expected \`server:tool\``);
  return { server: ref.slice(0, i), tool: ref.slice(i + 1) };
}
