/**
 * `<data>/serve.json`: how the CLI on this machine reaches the `writ serve` that holds a data
 * folder — its loopback URL, its pid and the admin API's token. Written when the server listens
 * (mode 0600, atomically), removed when it stops. Reading it is as good as reading the data
 * folder, which is the point: the operator who could open the store can reach the server instead.
 */
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface ServeFile {
  readonly url: string;
  readonly pid: number;
  readonly adminToken: string;
}

export const SERVE_FILE = "serve.json";

export async function writeServeFile(dataDir: string, file: ServeFile): Promise<void> {
  const path = join(dataDir, SERVE_FILE);
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(tmp, `${JSON.stringify(file)}\n`, { mode: 0o600, flag: "wx" });
  await rename(tmp, path);
}

export async function removeServeFile(dataDir: string): Promise<void> {
  await rm(join(dataDir, SERVE_FILE), { force: true });
}

/** The running server's file, or undefined when there is none or it is not one writ wrote. */
export async function readServeFile(dataDir: string): Promise<ServeFile | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(join(dataDir, SERVE_FILE), "utf8"));
  } catch {
    return undefined;
  }
  const v = value as Partial<ServeFile>;
  if (
    typeof v?.url === "string" &&
    /^http:\/\/[^/]+$/.test(v.url) &&
    typeof v.pid === "number" &&
    typeof v.adminToken === "string" &&
    v.adminToken.length >= 32
  ) {
    return { url: v.url, pid: v.pid, adminToken: v.adminToken };
  }
  return undefined;
}
