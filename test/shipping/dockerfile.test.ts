/**
 * The Dockerfile and compose.yaml, checked without building an image (no registry here, and
 * hadolint is not packaged in Debian): the rules a linter would hold them to, plus that they agree
 * with each other and with what `writ serve` accepts and serves.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { registerServe } from "../../src/cli/serve.js";

const root = join(import.meta.dirname, "../..");
const read = (f: string) => readFileSync(join(root, f), "utf8");

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

/** Dockerfile instructions: comments and parser directives dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = `${line.replace(/\\\s*$/, " ")}${next}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: not an instruction: ${line}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly body: Instruction[];
}

function stages(ins: readonly Instruction[]): Stage[] {
  const out: { image: string; name: string | undefined; body: Instruction[] }[] = [];
  for (const i of ins) {
    if (i.op === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      if (!m) throw new Error(`FROM on line ${i.line}: ${i.args}`);
      out.push({ image: m[1]!, name: m[2], body: [] });
    } else {
      if (out.length === 0) throw new Error(`line ${i.line}: ${i.op} before FROM`);
      out.at(-1)!.body.push(i);
    }
  }
  return out;
}

/** A base image pinned to an exact release (`x.y.z`) or a digest; never `latest` or a bare major. */
function isPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const tag = /^[^@]+:([^:/@]+)$/.exec(image)?.[1];
  if (tag === undefined || /latest/i.test(tag)) return false;
  return /^v?\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$/.test(tag);
}

const json = (args: string): string[] => JSON.parse(args) as string[];

const SECRETISH = /(^|\/)(\.env|.*\.pem|.*\.key|.*jwks.*|keys?|secrets?|\.writ|examples)(\/|$)/i;

const dockerfile = parseDockerfile(read("Dockerfile"));
const all = stages(dockerfile);
const final = all.at(-1)!;
const compose = parse(read("compose.yaml")) as {
  services: Record<string, Record<string, unknown>>;
  volumes: Record<string, unknown>;
};

function serveFlags(): Set<string> {
  const program = new Command("writ");
  registerServe(program, { out: () => {}, err: () => {} } as never, () => {}, {
    dataDir: ".writ",
    databaseUrl: undefined,
    pdpToken: undefined,
    version: "0.0.0",
  });
  const serve = program.commands.find((c) => c.name() === "serve")!;
  return new Set(serve.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f)));
}

/** `SOURCE:TARGET[:MODE]`, where SOURCE may hold `${VAR:-default}`. */
function mount(v: string): [string, string, string | undefined] {
  const m = /^(.*):(\/[^:]*)(?::(ro|rw))?$/.exec(v);
  if (!m) throw new Error(`volume ${v}`);
  return [m[1]!, m[2]!, m[3]];
}

function flagsIn(args: readonly string[]): string[] {
  return args.filter((a) => a.startsWith("-"));
}

describe("the Dockerfile", () => {
  it("builds in stages and runs from a pinned slim Node 20, every base pinned", () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    const names = new Set(all.map((s) => s.name).filter(Boolean));
    for (const s of all) {
      if (names.has(s.image)) continue;
      expect(isPinned(s.image), `FROM ${s.image}`).toBe(true);
    }
    expect(final.image).toMatch(/^node:20\.\d+\.\d+-(bookworm-)?slim(@sha256:[0-9a-f]{64})?$/);
    // the runtime copies the compiled code from a build stage instead of compiling in place
    const froms = final.body.filter((i) => i.op === "COPY" && /--from=/.test(i.args));
    expect(froms.map((i) => /--from=(\S+)/.exec(i.args)![1])).toEqual(expect.arrayContaining(["build"]));
    expect(final.body.some((i) => i.op === "RUN" && /npm run build|tsc/.test(i.args))).toBe(false);
  });

  it("runs as a non-root user set before the entry point", () => {
    const users = final.body.filter((i) => i.op === "USER");
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.args.split(":")[0]!;
    expect(["root", "0"]).not.toContain(user);
    const entry = final.body.findIndex((i) => i.op === "ENTRYPOINT");
    expect(entry).toBeGreaterThan(final.body.indexOf(users.at(-1)!));
    // nothing after USER switches back
    expect(final.body.slice(final.body.indexOf(users.at(-1)!)).filter((i) => i.op === "USER")).toHaveLength(
      1,
    );
  });

  it("copies no keys, secrets, examples or local state, and never uses ADD", () => {
    expect(dockerfile.filter((i) => i.op === "ADD")).toEqual([]);
    for (const i of dockerfile.filter((x) => x.op === "COPY")) {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith("--"));
      const sources = parts.slice(0, -1);
      for (const s of sources) expect(SECRETISH.test(s), `COPY ${s} (line ${i.line})`).toBe(false);
      if (!/--from=/.test(i.args)) {
        for (const s of sources)
          expect(existsSync(join(root, s)), `COPY ${s}: missing in the repo`).toBe(true);
      }
    }
    for (const i of dockerfile.filter((x) => x.op === "ENV" || x.op === "ARG")) {
      expect(i.args).not.toMatch(/TOKEN|PASSWORD|SECRET|PRIVATE/i);
    }
  });

  it("the build context holds only what the stages copy: .dockerignore denies all and lets those in", () => {
    const rules = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    expect(rules[0]).toBe("*");
    const allowed = rules.filter((r) => r.startsWith("!")).map((r) => r.slice(1).replace(/\/$/, ""));
    for (const a of allowed) expect(SECRETISH.test(a), a).toBe(false);
    for (const i of dockerfile.filter((x) => x.op === "COPY" && !/--from=/.test(x.args))) {
      const sources = i.args.split(/\s+/).slice(0, -1);
      for (const s of sources) expect(allowed, `COPY ${s}`).toContain(s.replace(/\/$/, ""));
    }
    expect(rules).toEqual(expect.arrayContaining(["**/*.pem", "**/*.jwks.json", "**/.env"]));
  });

  it("serves writ serve on the exposed port, keeps data in a volume and checks /readyz", () => {
    expect(json(final.body.find((i) => i.op === "ENTRYPOINT")!.args)).toEqual(["writ", "serve"]);
    const cmd = json(final.body.find((i) => i.op === "CMD")!.args);
    for (const f of flagsIn(cmd)) expect(serveFlags(), f).toContain(f);
    const port = cmd[cmd.indexOf("--port") + 1];
    expect(final.body.find((i) => i.op === "EXPOSE")!.args).toBe(port);
    expect(cmd[cmd.indexOf("--host") + 1]).toBe("0.0.0.0");

    const dataDir = /WRIT_DATA_DIR=(\S+)/.exec(final.body.find((i) => i.op === "ENV")!.args)![1]!;
    expect(json(final.body.find((i) => i.op === "VOLUME")!.args)).toContain(dataDir);

    const health = final.body.find((i) => i.op === "HEALTHCHECK")!.args;
    const url = /http:\/\/127\.0\.0\.1:(\d+)(\/\w+)/.exec(health)!;
    expect(url[1]).toBe(port);
    // readiness (store, migrations, keys: docs/operating.md), not the older store-only /healthz
    expect(url[2]).toBe("/readyz");
    // the path it asks is one the server has
    expect(read("src/http/app.ts")).toContain(`app.get("${url[2]}"`);
    // node:20-slim has no curl or wget: the check runs on node itself
    expect(health).toMatch(/CMD \["node", "-e"/);
  });
});

describe("compose.yaml", () => {
  const writ = compose.services.writ as {
    build: string;
    image: string;
    environment: Record<string, string>;
    command: string[];
    ports: string[];
    volumes: string[];
    healthcheck: { test: string[] };
    depends_on: Record<string, { condition: string }>;
  };
  const pg = compose.services.postgres as {
    image: string;
    environment: Record<string, string>;
    volumes: string[];
    healthcheck: { test: string[] };
  };

  it("builds writ from this Dockerfile, on PostgreSQL once it is healthy", () => {
    expect(writ.build).toBe(".");
    expect(writ.image).toBe(`writ:${(JSON.parse(read("package.json")) as { version: string }).version}`);
    expect(writ.depends_on.postgres?.condition).toBe("service_healthy");
    const url = new URL(writ.environment.WRIT_DATABASE_URL!.replace(/\$\{[^}]*\}/, "x"));
    expect(url.protocol).toBe("postgres:");
    expect(url.hostname).toBe("postgres");
    expect(url.username).toBe(pg.environment.POSTGRES_USER);
    expect(url.pathname).toBe(`/${pg.environment.POSTGRES_DB}`);
    // secrets come from the environment, required, never written here
    expect(writ.environment.WRIT_PDP_TOKEN).toMatch(/^\$\{WRIT_PDP_TOKEN:\?/);
    expect(pg.environment.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?/);
    expect(isPinned(pg.image), pg.image).toBe(true);
    expect(pg.healthcheck.test.join(" ")).toContain("pg_isready");
  });

  it("passes writ serve only flags it accepts, on the Dockerfile's port, volume and health check", () => {
    for (const f of flagsIn(writ.command)) expect(serveFlags(), f).toContain(f);
    const port = writ.command[writ.command.indexOf("--port") + 1];
    expect(final.body.find((i) => i.op === "EXPOSE")!.args).toBe(port);
    expect(writ.ports.map((p) => p.split(":").at(-1))).toEqual([port]);
    // published on loopback only: the proxy in front terminates TLS
    expect(writ.ports[0]).toMatch(/^127\.0\.0\.1:/);
    expect(writ.command).toContain("--public-url");
    const dataDir = /WRIT_DATA_DIR=(\S+)/.exec(final.body.find((i) => i.op === "ENV")!.args)![1]!;
    const mounts = writ.volumes.map(mount);
    expect(mounts.find((m) => m[1] === dataDir)?.[0]).toBe("writ-data");
    const config = writ.command[writ.command.indexOf("--config") + 1];
    expect(mounts.find((m) => m[1] === config)?.[2]).toBe("ro");
    expect(writ.healthcheck.test.join(" ")).toContain(`http://127.0.0.1:${port}/readyz`);
    for (const m of [...mounts, ...pg.volumes.map(mount)]) {
      if (!m[0]!.startsWith(".") && !m[0]!.startsWith("$"))
        expect(Object.keys(compose.volumes)).toContain(m[0]);
    }
  });

  it("the checks can fail: an unpinned base, root and an unknown flag are caught", () => {
    expect(isPinned("node:20-slim")).toBe(false);
    expect(isPinned("node:latest")).toBe(false);
    expect(isPinned("node")).toBe(false);
    expect(isPinned("node:20.20.2-bookworm-slim")).toBe(true);
    expect(isPinned(`node@sha256:${"a".repeat(64)}`)).toBe(true);
    const bad = stages(parseDockerfile("FROM node:20 AS b\nRUN x \\\n  y\nFROM b\nUSER root\n"));
    expect(bad[0]!.body[0]!.args).toMatch(/^x\s+y$/);
    expect(bad[1]!.body[0]!.args).toBe("root");
    expect(serveFlags().has("--listen")).toBe(false);
  });
});
