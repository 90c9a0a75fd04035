/**
 * What a coding agent's native tool call touches, as decision requests: `agent:<kind>:<Tool>` on a
 * typed resource. Whatever the agent calls its tool, what it does is named the way Claude Code
 * names its tools, so one rule covers every agent and every route to the same resource:
 *
 *   Read      a canonical file path read (Read, Grep, a `cat`, a `<` redirection, `cp`'s source …)
 *   Write     a canonical file path written (Write, Edit, a `>` redirection, `rm`, `sed -i` …)
 *   WebFetch  a host contacted (WebFetch, `curl`, `wget`, `nc`, `ssh`, `git push` …)
 *   WebSearch `-`
 *   Bash      the program a shell command runs (`git`, `cat` …)
 *   <other>   any other tool, under its own name, on `-`
 *
 * Paths are canonical (absolute, `..` gone, symlinks resolved — by the gateway's own resolver),
 * relative ones against the hook's `cwd`. Directory trees a tool reads or writes recursively are
 * listed (bounded); globs are expanded against the filesystem (bounded). Past a bound, or wherever
 * the call cannot be read exactly, the derivation says why, and the answer is at best `ask`.
 */
import { lstat, readdir, readFile, realpath } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { escapeGlob, foldGlob, globMatches, parseGlob, type ResourceRule } from "../core/index.js";
import { deriveResources } from "../gateway/resource.js";
import { patchFiles } from "./patch.js";
import type { HookInput, HookKind } from "./protocol.js";
import { type Effect, hostOf, readShell } from "./shell.js";

export type AgentKind = HookKind;
/** One native tool call, as a hook reports it (`cwd` absolute). */
export type NativeCall = HookInput;

export type Verb = "Read" | "Write" | "WebFetch" | "WebSearch" | "Bash";

/** One decision the call needs. */
export interface Need {
  readonly tool: string;
  readonly resource: string;
  /** Changes something or reaches out: refused in a tainted session. */
  readonly privileged: boolean;
}

/**
 * Paths a call reaches that writ does not list one by one — a file pattern, a folder past the
 * walk's bound, a git pathspec: decided on the rules (core/region.ts), `ask` where they cannot tell.
 */
export interface Region {
  readonly tool: "Read" | "Write";
  /** A resource glob (`*` crosses `/`) holding every path the call may reach. */
  readonly glob: string;
  readonly privileged: boolean;
  /** The tool may follow links out of the region: a grant of the region does not cover it. */
  readonly follows: boolean;
  /** Every path it reaches is on disk now (a folder walked, a pattern listed), not in a git history. */
  readonly onDisk: boolean;
  /** Why it is a region: the `ask` when the rules cannot tell. */
  readonly why: string;
  /** A folder in it whose files the tool never shows (git's `.git/`), as glob text ending in `/`. */
  readonly hidden?: string;
}

export interface Derivation {
  readonly needs: readonly Need[];
  readonly regions: readonly Region[];
  /** Why the call cannot be judged exactly; non-empty means at best `ask`. */
  readonly ask: readonly string[];
  /** Reads content from outside (a web page, a host): taints the session once it ran. */
  readonly external: boolean;
}

/** The resource of a need without one. */
export const NO_RESOURCE = "-";
const MAX_TREE = 2000;
/** Entries a file pattern's walk looks at (names only: only the matches become requests). */
const MAX_PATTERN_WALK = 20_000;
const MAX_GLOB = 1000;
const MAX_DEPTH = 32;

/** `list`: a folder's names; `list-tree`: the names at every level below it (a read of each folder). */
type FileMode = "read" | "write" | "list" | "list-tree" | "read-tree" | "write-tree";
type Does = FileMode | "glob" | "fetch" | "search" | "shell" | "read-many" | "patch";

/** How each agent's tools map to what they do, and where their arguments are. */
interface ToolSpec {
  readonly does: Does;
  /** Argument names, first present wins. */
  readonly args: readonly string[];
  /** Where the argument is absent: the working directory (Glob, Grep). */
  readonly defaultCwd?: boolean;
}

const TOOLS: Readonly<Record<AgentKind, Readonly<Record<string, ToolSpec>>>> = {
  "claude-code": {
    Read: { does: "read", args: ["file_path"] },
    NotebookRead: { does: "read", args: ["notebook_path"] },
    Write: { does: "write", args: ["file_path"] },
    Edit: { does: "write", args: ["file_path"] },
    MultiEdit: { does: "write", args: ["file_path"] },
    NotebookEdit: { does: "write", args: ["notebook_path"] },
    Glob: { does: "glob", args: ["path"], defaultCwd: true },
    // Claude Code's LS lists the folder's tree, every level of it
    LS: { does: "list-tree", args: ["path"], defaultCwd: true },
    Grep: { does: "read-tree", args: ["path"], defaultCwd: true },
    WebFetch: { does: "fetch", args: ["url"] },
    WebSearch: { does: "search", args: [] },
    Bash: { does: "shell", args: ["command"] },
  },
  "gemini-cli": {
    read_file: { does: "read", args: ["file_path", "absolute_path", "path"] },
    write_file: { does: "write", args: ["file_path", "absolute_path", "path"] },
    replace: { does: "write", args: ["file_path", "absolute_path", "path"] },
    read_many_files: { does: "read-many", args: ["paths", "include"] },
    list_directory: { does: "list", args: ["dir_path", "path"], defaultCwd: true },
    glob: { does: "glob", args: ["dir_path", "path"], defaultCwd: true },
    search_file_content: { does: "read-tree", args: ["dir_path", "path"], defaultCwd: true },
    grep_search: { does: "read-tree", args: ["dir_path", "path"], defaultCwd: true },
    web_fetch: { does: "fetch", args: ["prompt", "url"] },
    google_web_search: { does: "search", args: [] },
    run_shell_command: { does: "shell", args: ["command"] },
  },
  // Codex names its shell `Bash` in hooks; apply_patch carries the patch in `command`
  codex: {
    Bash: { does: "shell", args: ["command"] },
    apply_patch: { does: "patch", args: ["command"] },
  },
  // Cursor's tool types (cursor.ts maps its granular events onto them); `MCP:<tool>` goes by name
  cursor: {
    Shell: { does: "shell", args: ["command"] },
    Read: { does: "read", args: ["file_path"] },
    Write: { does: "write", args: ["file_path"] },
    // its input is not documented: a path under any of these names, else `ask`
    Delete: { does: "write", args: ["file_path", "path", "target_file"] },
    Grep: { does: "read-tree", args: ["file_path", "path"], defaultCwd: true },
  },
};

/** The tool segment of an action: letters, digits, `_ . -`; anything else is replaced. */
function toolName(tool: string): string {
  const s = tool.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 128);
  return s.length > 0 ? s : "_";
}

function pick(input: Readonly<Record<string, unknown>>, names: readonly string[]): unknown {
  for (const n of names) if (input[n] !== undefined) return input[n];
  return undefined;
}

const PATH_RULE = (base: string): ResourceRule => ({
  kind: "resource-rule",
  from: ["p"],
  each: false,
  as: "path",
  base,
  foldCase: false,
  path: [],
});

/** A canonical path; `undefined` with the reason pushed when it cannot be had. */
async function canonical(raw: string, base: string, ask: string[]): Promise<string | undefined> {
  try {
    const [p] = await deriveResources([PATH_RULE(base)], { p: raw });
    return p;
  } catch (err) {
    ask.push((err as Error).message);
    return undefined;
  }
}

/**
 * Every entry under a directory (canonical), or `undefined` past `max` entries. `folders`: only the
 * folders (and where links lead), the entries still counted against `max`.
 */
async function tree(
  root: string,
  max = MAX_TREE,
  folders = false,
  skip?: string,
): Promise<string[] | undefined> {
  const out: string[] = [root];
  let seen = 1;
  const queue: { dir: string; depth: number }[] = [{ dir: root, depth: 0 }];
  while (queue.length > 0) {
    const { dir, depth } = queue.shift()!;
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue; // not a directory, or gone
    }
    for (const e of entries) {
      if (depth === 0 && e.name === skip) continue; // a folder of the root the reader never lists
      const p = join(dir, e.name);
      if (seen >= max || depth >= MAX_DEPTH) return undefined;
      seen++;
      if (e.isSymbolicLink()) {
        // where the link leads is what a recursive reader reaches (cp -L, grep -R, tar -h)
        const real = await realpath(p).catch(() => undefined);
        if (!folders) out.push(p);
        if (real !== undefined) out.push(real);
        continue;
      }
      if (!folders || e.isDirectory()) out.push(p);
      if (e.isDirectory()) queue.push({ dir: p, depth: depth + 1 });
    }
  }
  return out;
}

function segmentRegex(seg: string): RegExp {
  let re = "^";
  for (const ch of seg) {
    if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else re += ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return new RegExp(`${re}$`, "s");
}

/** A glob expanded against the filesystem (dot files too: a superset of bash's); bounded. */
async function expandGlob(pattern: string, base: string, ask: string[]): Promise<string[] | undefined> {
  const abs = isAbsolute(pattern) ? pattern : join(base, pattern);
  const segments = abs.split(sep).filter((s) => s.length > 0);
  let paths: string[] = [sep];
  for (const seg of segments) {
    const next: string[] = [];
    if (!/[*?]/.test(seg)) {
      for (const p of paths) next.push(join(p, seg));
    } else {
      const re = segmentRegex(seg);
      for (const p of paths) {
        const names = await readdir(p).catch(() => [] as string[]);
        for (const n of names) if (re.test(n)) next.push(join(p, n));
        if (next.length > MAX_GLOB) {
          ask.push(`${pattern} matches more than ${MAX_GLOB} paths`);
          return undefined;
        }
      }
    }
    paths = next;
  }
  return paths.length > 0 ? paths : [abs]; // no match: bash passes the pattern as it is
}

/**
 * A file pattern (`**`, `*`, `?`, `[…]`, `{a,b}` …) below a folder as a resource glob that holds
 * every path it can match: `**` and `*` become `*` (which crosses `/`), a bracket `?`, and past
 * anything richer (braces, extglobs, escapes) the rest is `*`. `foldCase`: every letter is `?`.
 */
export function patternGlob(pattern: string, foldCase: boolean): string {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "*") {
      let stars = 1;
      while (pattern[i + 1] === "*") {
        i++;
        stars++;
      }
      out += "*";
      // `a/**/b` also matches `a/b`
      if (stars > 1 && pattern[i + 1] === "/") i++;
    } else if (ch === "?") out += "?";
    else if (ch === "[" && pattern.indexOf("]", i + 2) > 0) {
      out += "?";
      i = pattern.indexOf("]", i + 2);
    } else if ("{}()[]!+@\\|".includes(ch)) return `${out}*`;
    else if (foldCase && /\p{L}/u.test(ch)) out += "?";
    else out += escapeGlob(ch);
  }
  return out;
}

/** Does a file pattern's segment hold anything but literal text? */
const SPECIAL = /[*?[\]{}()!+@\\|]/;

/** Is there anything at `p` (a link counts, wherever it leads)? */
function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** The repository folder holding `dir` (the nearest with a `.git`), or `undefined`. */
async function gitTop(dir: string): Promise<string | undefined> {
  let at = resolve(dir);
  for (;;) {
    if (await exists(join(at, ".git"))) return at;
    const up = dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}

/**
 * The URLs a `git push`/`fetch` may reach in the repository at `dir`: the named remote's, or, when
 * none is named, those of `origin` and of every remote a branch or `remote.pushDefault` names (a
 * superset of the one git picks). `undefined` when there is no repository or no such remote.
 */
async function gitRemoteUrls(dir: string, remote: string | undefined): Promise<string[] | undefined> {
  let at = resolve(dir);
  for (;;) {
    const text = await readFile(join(at, ".git", "config"), "utf8").catch(() => undefined);
    if (text !== undefined) {
      const urls = new Map<string, string[]>();
      const named = new Set<string>([remote ?? "origin"]);
      let section: string | undefined;
      let remoteName: string | undefined;
      for (const line of text.split("\n")) {
        const head = /^\s*\[\s*([A-Za-z]+)(?:\s+"([^"]*)")?\s*\]/.exec(line);
        if (head) {
          section = head[1]!.toLowerCase();
          remoteName = section === "remote" ? head[2] : undefined;
          continue;
        }
        const kv = /^\s*([A-Za-z]+)\s*=\s*(.+?)\s*$/.exec(line);
        if (!kv) continue;
        const key = kv[1]!.toLowerCase();
        if (section === "remote" && remoteName !== undefined && (key === "url" || key === "pushurl")) {
          urls.set(remoteName, [...(urls.get(remoteName) ?? []), kv[2]!]);
        } else if (
          remote === undefined &&
          section === "branch" &&
          (key === "remote" || key === "pushremote")
        ) {
          named.add(kv[2]!);
        } else if (remote === undefined && section === "remote" && key === "pushdefault") named.add(kv[2]!);
      }
      const out: string[] = [];
      for (const n of named) {
        const u = urls.get(n);
        if (u === undefined) return undefined;
        out.push(...u);
      }
      return out;
    }
    const up = dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>]+/gi;

class Builder {
  readonly needs: Need[] = [];
  readonly ask: string[] = [];
  readonly regions: Region[] = [];
  external = false;
  readonly #seen = new Set<string>();
  constructor(readonly call: NativeCall) {}

  need(tool: string, resource: string, privileged: boolean): void {
    const key = `${tool}\u0000${resource}`;
    if (this.#seen.has(key)) {
      if (privileged) {
        const i = this.needs.findIndex((n) => n.tool === tool && n.resource === resource);
        if (i >= 0 && !this.needs[i]!.privileged) this.needs[i] = { tool, resource, privileged };
      }
      return;
    }
    this.#seen.add(key);
    this.needs.push({ tool, resource, privileged });
  }

  async file(mode: FileMode, raw: string, base: string): Promise<void> {
    const p = await canonical(raw, base, this.ask);
    if (p === undefined) return;
    const verb = mode === "write" || mode === "write-tree" ? "Write" : "Read";
    const privileged = verb === "Write";
    if (mode === "list-tree") {
      await this.listTree(p);
      return;
    }
    if (mode === "read-tree" || mode === "write-tree") {
      const isDir = await lstat(p)
        .then((s) => s.isDirectory())
        .catch(() => false);
      if (isDir) {
        const all = await tree(p);
        if (all === undefined) {
          // past the bound: decided on the rules over everything below it
          this.need(verb, p, privileged);
          this.regions.push({
            tool: verb,
            glob: `${escapeGlob(p)}/*`,
            privileged,
            follows: true,
            onDisk: true,
            why: `${p} holds more than ${MAX_TREE} entries: writ cannot check each`,
          });
          return;
        }
        // entries of a canonical directory are canonical; links were followed by `tree`
        for (const e of all) this.need(verb, e, privileged);
        return;
      }
    }
    this.need(verb, p, privileged);
  }

  /**
   * The names at every level below a folder (`LS`, `find`, `ls -R`): a read of the folder and of each
   * folder below it (and wherever a link leads); past the walk's bound, the region below it.
   */
  async listTree(p: string, skip?: string): Promise<void> {
    this.need("Read", p, false);
    const isDir = await lstat(p)
      .then((s) => s.isDirectory())
      .catch(() => false);
    if (!isDir) return;
    const dirs = await tree(p, MAX_PATTERN_WALK, true, skip);
    if (dirs !== undefined && dirs.length <= MAX_TREE) {
      for (const d of dirs) this.need("Read", d, false);
      return;
    }
    this.regions.push({
      tool: "Read",
      glob: `${escapeGlob(p)}/*`,
      privileged: false,
      follows: false,
      onDisk: true,
      why: `${p} holds more than ${dirs === undefined ? MAX_PATTERN_WALK : MAX_TREE} ${dirs === undefined ? "entries" : "folders"}: writ cannot check each`,
    });
  }

  /**
   * A git command's repository: the top folder of the work tree holding `dir`, read as a folder,
   * and, when the command can show any of it, read whole as the region below it — its history
   * included, so a path that is gone from the disk is reached still (`onDisk: false`).
   */
  async gitRepo(e: Extract<Effect, { kind: "git-repo" }>, dir: string): Promise<void> {
    const top = await gitTop(dir);
    if (top === undefined) {
      // no repository: git reads at most the folder (and fails)
      await this.file("read", ".", dir);
      return;
    }
    const root = await canonical(top, top, this.ask);
    if (root === undefined) return;
    this.need("Read", root, false);
    if (e.metadata || e.limited) return;
    for (const o of e.operands) {
      if (await exists(resolve(dir, o))) return; // a path: git limits what it shows to it
    }
    if (e.lists) {
      // the work tree's names at every level; git never lists its own folder
      await this.listTree(root, ".git");
      return;
    }
    if (e.operands.length === 0 && e.objects) return; // `REV:path` alone: that object only
    const at = escapeGlob(root === sep ? "" : root);
    // a history never holds `.git/` itself: denies of what is in it (its hooks) are not met
    const region = { glob: `${at}/*`, follows: false, onDisk: false, hidden: `${at}/.git/` };
    this.regions.push({
      tool: "Read",
      privileged: false,
      ...region,
      why: `git reads the whole repository at ${root}, its history included`,
    });
    if (e.worktree) {
      this.regions.push({
        tool: "Write",
        privileged: true,
        ...region,
        why: `git may rewrite any file of the work tree at ${root}`,
      });
    }
  }

  /**
   * A file pattern below a folder (`Glob`): the folder is listed, and every path the pattern matches
   * is read as far as the model learns (its name). The folder is walked (names only, bounded) and
   * each match decided; past the bound, the pattern is decided as a region on the rules.
   */
  async pattern(
    tool: string,
    pattern: unknown,
    dirRaw: string,
    cwd: string,
    foldCase: boolean,
    /** The tool reads what it matches, through links too (`read_many_files`), not only names. */
    reads = false,
  ): Promise<void> {
    const dir = await canonical(dirRaw, cwd, this.ask);
    if (dir === undefined) return;
    this.need("Read", dir, false);
    if (typeof pattern !== "string" || pattern.length === 0) {
      this.ask.push(`${tool}: no pattern writ can read`);
      return;
    }
    if (pattern.split(/[\\/]/).includes("..")) {
      this.ask.push(`${tool}: a pattern that leaves its directory`);
      return;
    }
    const abs = isAbsolute(pattern) ? pattern : join(dir, pattern);
    const segments = abs.split(sep).filter((x) => x.length > 0);
    const first = segments.findIndex((x) => SPECIAL.test(x));
    if (first < 0) {
      // a pattern without a wildcard names one path
      await this.file("read", abs, dir);
      return;
    }
    const root = await canonical(sep + segments.slice(0, first).join(sep), dir, this.ask);
    if (root === undefined) return;
    const base = escapeGlob(root === sep ? "" : root);
    const rest = segments.slice(first).join("/");
    const all = await tree(root, MAX_PATTERN_WALK);
    // matched without case: a superset of what a case-sensitive tool finds
    const re = foldGlob(parseGlob(`${base}/${patternGlob(rest, false)}`));
    const matches = all?.filter((e) => globMatches(re, e, true));
    if (matches !== undefined && matches.length <= MAX_TREE) {
      for (const m of matches) await this.file("read", m, root);
      return;
    }
    this.regions.push({
      tool: "Read",
      glob: `${base}/${patternGlob(rest, foldCase)}`,
      privileged: false,
      follows: reads,
      onDisk: true,
      why: `${tool} ${JSON.stringify(pattern)} reaches more than ${MAX_TREE} paths below ${root}: writ cannot check each`,
    });
  }

  host(host: string): void {
    this.external = true;
    this.need("WebFetch", host, true);
  }

  async effect(e: Effect): Promise<void> {
    switch (e.kind) {
      case "read":
      case "write":
      case "read-tree":
      case "write-tree":
      case "list-tree":
        for (const d of e.dirs) await this.file(e.kind, e.path, d);
        return;
      case "git-repo":
        for (const d of e.dirs) await this.gitRepo(e, d);
        return;
      case "glob":
        for (const d of e.dirs) {
          const paths = await expandGlob(e.pattern, d, this.ask);
          if (paths === undefined) continue;
          for (const p of paths) await this.file(e.mode, p, d);
        }
        return;
      case "host":
        this.host(e.host);
        return;
      case "git-remote":
        for (const d of e.dirs) {
          const urls = await gitRemoteUrls(d, e.remote);
          if (urls === undefined) {
            this.ask.push(`the git remote ${e.remote ?? "(default)"} of ${d} is not found`);
            continue;
          }
          for (const u of urls) {
            const h = /^[a-z][a-z0-9+.-]*:\/\//i.test(u)
              ? hostOf(u)
              : /^[^/:]+:/.test(u)
                ? hostOf(u.split(":")[0]!.split("@").pop()!)
                : undefined;
            if (h === undefined || u.startsWith("file:"))
              this.ask.push(`the git remote ${JSON.stringify(u)} is a local path or unreadable`);
            else this.host(h);
          }
        }
        return;
      case "exec":
        this.need("Bash", e.program, !e.readOnly);
        return;
      case "git-path":
        for (const d of e.dirs) {
          const top = await gitTop(d);
          if (top === undefined) this.ask.push(`${d} is not in a git repository`);
          else {
            const base = /^\.\.?(\/|$)/.test(e.path) ? d : top;
            await this.file("read-tree", e.path.length > 0 ? e.path : ".", base);
          }
        }
        return;
      case "git-operand":
        // git takes it for a path when one exists, else for a revision
        for (const d of e.dirs) if (await exists(resolve(d, e.path))) await this.file(e.mode, e.path, d);
        return;
      case "git-pathspec":
        for (const d of e.dirs) {
          const base = isAbsolute(e.pattern) ? undefined : await canonical(d, d, this.ask);
          if (!isAbsolute(e.pattern) && base === undefined) continue;
          const tool = e.mode === "write" ? "Write" : "Read";
          this.regions.push({
            tool,
            glob: `${base === undefined ? "" : `${escapeGlob(base)}/`}${patternGlob(e.pattern, false)}`,
            privileged: tool === "Write",
            follows: false,
            onDisk: false,
            why: `the git pathspec ${JSON.stringify(e.pattern)} can match any path of the history below ${base ?? "/"}`,
          });
        }
        return;
    }
  }
}

/** The needs of one native tool call. `home` resolves `~`. */
export async function derive(call: NativeCall, home: string): Promise<Derivation> {
  const b = new Builder(call);
  // own keys only: a tool named `constructor` or `toString` is not a tool writ reads
  const specs = TOOLS[call.kind];
  const spec = Object.hasOwn(specs, call.tool) ? specs[call.tool] : undefined;
  if (spec === undefined) {
    // a tool writ does not read (an MCP tool, a task, a to-do list): decided by its name alone
    b.need(toolName(call.tool), NO_RESOURCE, true);
    return { needs: b.needs, regions: b.regions, ask: b.ask, external: false };
  }
  const value = pick(call.input, spec.args);
  switch (spec.does) {
    case "read":
    case "write":
    case "list":
    case "list-tree":
    case "read-tree":
    case "write-tree": {
      if (value === undefined && spec.defaultCwd) await b.file(spec.does, call.cwd, call.cwd);
      else if (typeof value === "string" && value.length > 0) await b.file(spec.does, value, call.cwd);
      else b.ask.push(`${call.tool}: the tool's path argument is missing or not a string`);
      break;
    }
    case "glob": {
      const dir =
        value === undefined ? call.cwd : typeof value === "string" && value.length > 0 ? value : undefined;
      if (dir === undefined) b.ask.push(`${call.tool}: the tool's path argument is missing or not a string`);
      else {
        // Gemini CLI's glob ignores case unless told not to
        const fold = call.kind === "gemini-cli" && call.input.case_sensitive !== true;
        await b.pattern(call.tool, call.input.pattern, dir, call.cwd, fold);
      }
      break;
    }
    case "read-many": {
      // every argument it reads from, together (`paths` and `include` add up)
      const given = spec.args.map((a) => call.input[a]).filter((v) => v !== undefined);
      const list = given.flatMap((v) => (Array.isArray(v) ? v : [v]));
      if (list.length === 0) b.ask.push(`${call.tool}: no paths writ can read`);
      for (const item of list) {
        if (typeof item !== "string" || item.length === 0)
          b.ask.push(`${call.tool}: a path that is not a string`);
        // a pattern (`**` crosses folders): every path it matches below the working directory
        else if (/[*?[{]/.test(item)) await b.pattern(call.tool, item, call.cwd, call.cwd, false, true);
        else await b.file("read-tree", item, call.cwd);
      }
      break;
    }
    case "fetch": {
      const text = typeof value === "string" ? value : "";
      const urls = call.tool === "WebFetch" ? [text] : (text.match(URL_IN_TEXT) ?? []);
      if (urls.length === 0) b.ask.push(`${call.tool}: no URL writ can read`);
      for (const u of urls) {
        let host: string | undefined;
        try {
          const url = new URL(u);
          if (url.protocol === "http:" || url.protocol === "https:") host = hostOf(u);
        } catch {
          host = undefined;
        }
        if (host === undefined)
          b.ask.push(`${call.tool}: ${JSON.stringify(u.slice(0, 200))} is not an http(s) URL`);
        else b.host(host);
      }
      break;
    }
    case "patch": {
      const { paths, problems } = patchFiles(typeof value === "string" ? value : "");
      b.ask.push(...problems);
      for (const p of paths) await b.file("write", p, call.cwd);
      break;
    }
    case "search":
      b.external = true;
      b.need("WebSearch", NO_RESOURCE, true);
      break;
    case "shell": {
      if (typeof value !== "string" || value.trim().length === 0) {
        b.ask.push(`${call.tool}: no command`);
        break;
      }
      const dir = call.input.dir_path ?? call.input.directory;
      let cwd = call.cwd;
      if (typeof dir === "string" && dir.length > 0) cwd = isAbsolute(dir) ? dir : join(call.cwd, dir);
      const reading = readShell(value, cwd, home);
      b.ask.push(...reading.ask);
      for (const e of reading.effects) await b.effect(e);
      break;
    }
  }
  return { needs: b.needs, regions: b.regions, ask: b.ask, external: b.external };
}
