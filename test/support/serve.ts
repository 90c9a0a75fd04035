/**
 * `writ serve` as a child process (the built binary), for tests that need the real process: its
 * listening URL from the first `--json` line, its exit code, and a kill for cleanup.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { BIN } from "./cli.js";

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

export async function startServe(
  config: string,
  dataDir: string,
  env?: NodeJS.ProcessEnv,
): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--config", config, "--port", "0", "--data", dataDir, "--json"],
    {
      stdio: ["ignore", "pipe", "pipe"],
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    },
  );
  // the server logs every request to stderr: read it, or a full pipe would block the server
  child.stderr?.resume();
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("serve did not start in 30 s")), 30_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { listening: string }).listening);
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}`)));
  });
  return { child, url, exited };
}
