/**
 * The load generator of the HTTP benches (broker, AuthZEN), as a process of its own (forked with
 * the tsx loader): the servers' process then holds the servers alone, and its CPU time is theirs.
 * Each target is a writ server's token exchange (test/broker/exchange-client.ts: a fresh
 * private_key_jwt assertion and DPoP proof per request, signed *before* the slice starts, so that
 * the client's signing is not in the measured time) or a fixed POST (the peer's client_credentials
 * form, an AuthZEN evaluation). A slice keeps `concurrency` POSTs in flight for `ms` milliseconds
 * over node:http with keep-alive and answers with their latencies (µs); an answer that is not a
 * 200 holding the expected text fails it.
 *
 * Messages: `{ op: "target", id, base }` (writ's token exchange) or `{ op: "target", id, url, body,
 * headers?, expect? }` (a fixed POST: a form expecting an access token unless told otherwise),
 * answered `{ op: "ready" }`; `{ op: "slice", id, concurrency, ms }`, answered
 * `{ op: "done", samples, ms, failure? }`.
 */
import http from "node:http";
import { exchangeClient, type PreparedRequest } from "../test/broker/exchange-client.js";

const TOKEN = '"access_token"';

type Target =
  | { readonly kind: "writ"; readonly next: () => PreparedRequest; expected: number }
  | { readonly kind: "fixed"; readonly request: PreparedRequest; readonly expect: string };

type Message =
  | { op: "target"; id: string; base: string }
  | {
      op: "target";
      id: string;
      url: string;
      body: string;
      headers?: Record<string, string>;
      expect?: string;
    }
  | { op: "slice"; id: string; concurrency: number; ms: number };

const targets = new Map<string, Target>();
const agents = new Map<number, http.Agent>();

function agentFor(concurrency: number): http.Agent {
  let agent = agents.get(concurrency);
  if (agent === undefined) {
    agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    agents.set(concurrency, agent);
  }
  return agent;
}

function send(r: PreparedRequest, agent: http.Agent): Promise<{ status: number; text: string }> {
  const u = new URL(r.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent,
        headers: { ...r.headers, "content-length": Buffer.byteLength(r.body) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

async function slice(t: Target, concurrency: number, ms: number) {
  // writ's requests are signed ahead: as many as the last slice answered, and half again
  const pool: PreparedRequest[] = [];
  if (t.kind === "writ") for (let i = 0; i < Math.ceil(t.expected * 1.5) + 50; i++) pool.push(t.next());
  const agent = agentFor(concurrency);
  const expect = t.kind === "fixed" ? t.expect : TOKEN;
  const samples: number[] = [];
  let failure: string | undefined;
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (failure === undefined && performance.now() < end) {
        const r = t.kind === "fixed" ? t.request : (pool.pop() ?? t.next());
        const t0 = performance.now();
        try {
          const { status, text } = await send(r, agent);
          if (status !== 200 || !text.includes(expect)) failure = `${status} ${text.slice(0, 300)}`;
        } catch (err) {
          failure = String(err);
        }
        samples.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const took = performance.now() - started;
  if (t.kind === "writ") t.expected = samples.length;
  return { samples, ms: took, failure };
}

process.on("message", async (m: Message) => {
  if (m.op === "target") {
    if ("base" in m) {
      const c = await exchangeClient(m.base);
      targets.set(m.id, { kind: "writ", next: () => c.prepareExchange(), expected: 200 });
    } else {
      const request = {
        url: m.url,
        headers: m.headers ?? { "content-type": "application/x-www-form-urlencoded" },
        body: m.body,
      };
      targets.set(m.id, { kind: "fixed", request, expect: m.expect ?? TOKEN });
    }
    process.send!({ op: "ready" });
    return;
  }
  const t = targets.get(m.id);
  if (t === undefined) throw new Error(`no target ${m.id}`);
  process.send!({ op: "done", ...(await slice(t, m.concurrency, m.ms)) });
});
process.on("disconnect", () => {
  for (const a of agents.values()) a.destroy();
});
