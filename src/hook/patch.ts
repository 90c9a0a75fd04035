/**
 * The files a Codex `apply_patch` touches, read from the patch itself (the tool's documented
 * envelope: `*** Begin Patch`, then `*** Add File: <path>`, `*** Update File: <path>` with an optional
 * `*** Move to: <path>`, `*** Delete File: <path>`, and `*** End Patch`). Every one is written.
 * Anything else — no envelope, no file — is for the human: writ cannot say what the patch does.
 */
const HEADER = /^\*\*\* (?:Add File|Update File|Delete File|Move to): (.*)$/;

export interface PatchFiles {
  readonly paths: readonly string[];
  /** Why the patch cannot be read exactly; non-empty means at best `ask`. */
  readonly problems: readonly string[];
}

export function patchFiles(patch: string): PatchFiles {
  const lines = patch.split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== "");
  if (first < 0 || lines[first]!.trim() !== "*** Begin Patch") {
    return { paths: [], problems: ["apply_patch: the patch does not start with `*** Begin Patch`"] };
  }
  const paths: string[] = [];
  const problems: string[] = [];
  for (const line of lines) {
    const m = HEADER.exec(line);
    if (!m) continue;
    const path = m[1]!.trim();
    if (path === "") problems.push("apply_patch: a file header without a path");
    else paths.push(path);
  }
  if (paths.length === 0 && problems.length === 0) problems.push("apply_patch: the patch names no file");
  return { paths, problems };
}
