/**
 * The `writ` command line: one file per verb, this file wires them. Exit codes: docs/cli.md.
 * This is the CLI's composition root: the only place that reads the environment.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { EXIT, type Io, reportFailure, stdio } from "./output.js";

export const VERSION = "0.1.0";

/** The whole of stdin, up to 1 MiB (a credential helper's request is a few lines). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > 1024 * 1024) break;
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function main(
  argv: readonly string[],
  io: Io = stdio,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let exitCode: number = EXIT.ok;
  const setExit = (code: number) => {
    exitCode = code;
  };
  const program = new Command("writ")
    .description("permission control plane for AI agents")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError("(run `writ --help` for the verbs)");
  const dataDir = env.WRIT_DATA_DIR || ".writ";
  const databaseUrl = env.WRIT_DATABASE_URL || undefined;
  const approver = env.WRIT_APPROVER || undefined;
  const operator = env.WRIT_OPERATOR || env.USER || "operator";
  // Each verb's module is loaded only when that verb runs (or for the full help): the store, Cedar
  // and the AWS catalog cost most of a second to import, which `writ check` should not pay.
  const verbs: Record<string, () => Promise<void>> = {
    init: async () => (await import("./init.js")).registerInit(program, io, setExit, VERSION),
    check: async () => (await import("./check.js")).registerCheck(program, io, setExit),
    explain: async () => (await import("./explain.js")).registerExplain(program, io, setExit),
    serve: async () =>
      (await import("./serve.js")).registerServe(program, io, setExit, {
        dataDir,
        databaseUrl,
        pdpToken: env.WRIT_PDP_TOKEN || undefined,
        host: env.WRIT_HOST || undefined,
        port: env.WRIT_PORT || undefined,
        publicUrl: env.WRIT_PUBLIC_URL || undefined,
        logLevel: env.WRIT_LOG_LEVEL || undefined,
        metricsToken: env.WRIT_METRICS_TOKEN || undefined,
        prettyLogs: io === stdio && process.stderr.isTTY === true,
        envNames: Object.keys(env).filter((k) => k.startsWith("WRIT_")),
        version: VERSION,
      }),
    audit: async () => {
      (await import("./audit.js")).registerAudit(program, io, setExit, { dataDir, databaseUrl });
    },
    approve: async () => {
      (await import("./approve.js")).registerApprove(program, io, setExit, {
        dataDir,
        databaseUrl,
        approver,
      });
    },
    deny: async () => {
      (await import("./approve.js")).registerDeny(program, io, setExit, { dataDir, databaseUrl, approver });
    },
    approvals: async () => {
      (await import("./approve.js")).registerApprovals(program, io, setExit, { dataDir, databaseUrl });
    },
    keys: async () => {
      (await import("./keys.js")).registerKeys(program, io, setExit, { dataDir, databaseUrl, operator });
    },
    gateway: async () =>
      (await import("./gateway.js")).registerGateway(program, io, setExit, {
        dataDir,
        databaseUrl,
        version: VERSION,
        env,
      }),
    tools: async () =>
      (await import("./tools.js")).registerTools(program, io, setExit, { dataDir, databaseUrl, operator }),
    aws: async () => (await import("./aws.js")).registerAws(program, io, setExit),
    downstream: async () => (await import("./downstream.js")).registerDownstream(program, io, setExit),
    kill: async () =>
      (await import("./kill.js")).registerKill(program, io, setExit, {
        dataDir,
        databaseUrl,
        operator,
      }),
    scan: async () =>
      (await import("./scan.js")).registerScan(program, io, setExit, {
        dataDir,
        databaseUrl,
        version: VERSION,
      }),
    creds: async () =>
      (await import("./creds.js")).registerCreds(program, io, setExit, {
        server: env.WRIT_SERVER || undefined,
        agent: env.WRIT_AGENT || undefined,
        key: env.WRIT_AGENT_KEY || undefined,
        environment: env.WRIT_ENV || undefined,
        cacheDir:
          env.WRIT_CACHE_DIR ||
          join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "writ", "creds"),
        stdin: readStdin,
        execInfo: env.KUBERNETES_EXEC_INFO,
      }),
    hook: async () =>
      (await import("./hook.js")).registerHook(program, io, setExit, { env, stdin: readStdin }),
    agents: async () =>
      (await import("./agents.js")).registerAgents(program, io, setExit, { dataDir, databaseUrl }),
    maturity: async () =>
      (await import("./maturity.js")).registerMaturity(program, io, setExit, { dataDir, databaseUrl }),
    report: async () =>
      (await import("./report.js")).registerReport(program, io, setExit, { dataDir, databaseUrl }),
    findings: async () =>
      (await import("./findings.js")).registerFindings(program, io, setExit, {
        dataDir,
        databaseUrl,
        operator: env.WRIT_OPERATOR || env.USER || "operator",
      }),
  };
  const verb = argv.find((a) => !a.startsWith("-"));
  const versionOnly = verb === undefined && (argv.includes("--version") || argv.includes("-V"));
  const selected =
    verb !== undefined && Object.hasOwn(verbs, verb) ? [verb] : versionOnly ? [] : Object.keys(verbs);
  for (const name of selected) await verbs[name]!();
  const json = argv.includes("--json");
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" ||
        err.code === "commander.version" ||
        err.code === "commander.help"
      ) {
        return EXIT.ok;
      }
      return EXIT.usage;
    }
    return reportFailure(io, json, err);
  }
  return exitCode;
}
