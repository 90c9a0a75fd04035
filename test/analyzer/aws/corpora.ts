/** The shared real-data corpora (../shared/corpora); tests fail, never skip, when they are absent. */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ROOT } from "../../support/cli.js";

export const CORPORA = resolve(ROOT, "..", "shared", "corpora");

export function corpus(...parts: string[]): string {
  const path = join(CORPORA, ...parts);
  if (!existsSync(path)) {
    throw new Error(
      `corpus missing: ${path} — the AWS analyzer tests need ../shared/corpora (see its README.md)`,
    );
  }
  return path;
}
