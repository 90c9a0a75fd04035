/**
 * `writ serve` in this process (serveCommand, as the CLI runs it: the store, the HTTP app, the
 * connection limits and timeouts) on a loopback port, and raw HTTP clients for what fetch cannot
 * send: a stalled chunked body, headers that never end, many open connections.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServeDefaults, type ServeOptions, serveCommand } from "../../src/cli/serve.js";
import { QUICKSTART } from "../broker/live.js";

export const PDP_TOKEN = "bad-input-test-pdp-token-0123456789";

const RUG_PULL = join(import.meta.dirname, "..", "gateway", "fixtures", "rug-pull.mjs");
/** A gateway section for the quickstart: one small upstream (a real MCP server over stdio). */
export const GATEWAY_YAML = `gateway:
  upstreams:
    weather:
      command: ${process.execPath}
      args: ["${RUG_PULL}"]
`;

export interface Served {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminToken: string;
  /** What the server wrote to stderr through the CLI's io. */
  readonly errors: string[];
  stop(): Promise<number>;
}

/** A copy of the quickstart (keys and guardrails) whose writ.yaml is edited and gets `extraYaml` appended. */
export async function quickstartCopy(
  dir: string,
  extraYaml = "",
  edit: (yaml: string) => string = (yaml) => yaml,
): Promise<string> {
  await cp(join(QUICKSTART, "keys"), join(dir, "keys"), { recursive: true });
  await cp(join(QUICKSTART, "guardrails.cedar"), join(dir, "guardrails.cedar"));
  const yaml = await readFile(join(QUICKSTART, "writ.yaml"), "utf8");
  const file = join(dir, "writ.yaml");
  await writeFile(file, `${edit(yaml)}\n${extraYaml}`);
  return file;
}

/** Runs `writ serve` in process until `stop()`; rejects with the CLI failure if it does not start. */
export async function serveInProcess(
  config: string,
  opts: {
    databaseUrl?: string | undefined;
    pdpToken?: string | undefined;
    flags?: Partial<ServeOptions>;
    /** What the environment would give (`WRIT_PORT`, `WRIT_PUBLIC_URL`, …); an undefined flag lets it through. */
    defaults?: Partial<ServeDefaults>;
  } = {},
): Promise<Served> {
  const dataDir = await mkdtemp(join(tmpdir(), "writ-http-"));
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const errors: string[] = [];
  let listening!: (url: string) => void;
  const started = new Promise<string>((resolve) => {
    listening = resolve;
  });
  const done = serveCommand(
    { config, host: "127.0.0.1", port: "0", data: dataDir, json: true, ...opts.flags },
    {
      out: (text) => listening((JSON.parse(text) as { listening: string }).listening),
      err: (text) => errors.push(text),
    },
    {
      dataDir,
      databaseUrl: opts.databaseUrl,
      pdpToken: opts.pdpToken,
      version: "test",
      stopped,
      ...opts.defaults,
    },
  );
  let url: string;
  try {
    url = await Promise.race([
      started,
      done.then((code) => Promise.reject(new Error(`serve exited ${code}`))),
    ]);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const { adminToken } = JSON.parse(await readFile(join(dataDir, "serve.json"), "utf8")) as {
    adminToken: string;
  };
  return {
    url,
    port: Number(new URL(url).port),
    dataDir,
    adminToken,
    errors,
    async stop() {
      stop();
      const code = await done;
      await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** A raw connection, with everything it received and whether the server closed it. */
export interface Raw {
  readonly socket: Socket;
  /** What arrived so far. */
  received(): string;
  /** Resolves when the server has closed the connection (or it was reset). */
  readonly closed: Promise<void>;
  /** Resolves with `pick(received)` once it is defined; rejects if the connection closes first. */
  until<T>(pick: (received: string) => T | undefined): Promise<T>;
  /** Resolves with the first full head of a response (status line and headers). */
  head(): Promise<{ status: number; headers: Record<string, string> }>;
}

function parseHead(data: string): { status: number; headers: Record<string, string> } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(" ")[1]), headers };
}

export function rawConnection(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    const waiters: (() => void)[] = [];
    const wake = () => {
      for (const w of waiters.splice(0)) w();
    };
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("latin1");
      wake();
    });
    socket.on("error", () => {});
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    void closed.then(wake);
    const until = async <T>(pick: (received: string) => T | undefined): Promise<T> => {
      for (;;) {
        const value = pick(data);
        if (value !== undefined) return value;
        if (socket.destroyed)
          throw new Error(`closed before the expected answer: ${JSON.stringify(data.slice(0, 500))}`);
        await new Promise<void>((w) => waiters.push(w));
      }
    };
    socket.once("connect", () =>
      resolve({ socket, received: () => data, closed, until, head: () => until(parseHead) }),
    );
    socket.once("error", reject);
  });
}

/** The JSON body after the head (Content-Length framed), once it has fully arrived. */
export async function rawJsonBody(raw: Raw): Promise<Record<string, unknown>> {
  const { headers } = await raw.head();
  const length = Number(headers["content-length"]);
  const body = await raw.until((text) => {
    const start = text.indexOf("\r\n\r\n") + 4;
    return text.length - start >= length ? text.slice(start, start + length) : undefined;
  });
  return JSON.parse(Buffer.from(body, "latin1").toString("utf8")) as Record<string, unknown>;
}
