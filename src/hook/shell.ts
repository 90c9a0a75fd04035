/**
 * A conservative reading of a shell command line: what each command in it touches — files read or
 * written (and whole trees, for recursive tools), hosts contacted, programs run. Whatever this
 * reading cannot be sure of is an `ask` with its reason, never a silent pass: command substitution,
 * backticks, `eval`, variables where a file or a program goes, brace and bracket expansion, shell
 * control structures, heredocs feeding interpreters, programs whose effects writ does not know.
 *
 * `shell-quote` splits the words; it is lossy in ways that matter here (it reads a newline as a
 * blank, `$(` as a variable, a backtick as a letter, `a#b` as a comment), so the raw text is
 * scanned first (`prepare`): newlines become `;`, comments and heredoc bodies go, and every
 * construct that would make the words differ from what bash runs is an `ask`.
 *
 * Pure: relative paths are resolved later (derive.ts) against the working directories each command
 * may run in — after a `cd`, both the old and the new one, since `cd x || cat f` and
 * `cd x | cat f` run `cat` where it started.
 */
import { isAbsolute, join, posix } from "node:path";
import { parse } from "shell-quote";

/** What one command line touches. Paths are as written (relative ones with the directories). */
export type Effect =
  | { readonly kind: "read"; readonly path: string; readonly dirs: readonly string[] }
  | { readonly kind: "read-tree"; readonly path: string; readonly dirs: readonly string[] }
  | { readonly kind: "write"; readonly path: string; readonly dirs: readonly string[] }
  | { readonly kind: "write-tree"; readonly path: string; readonly dirs: readonly string[] }
  /** The names below a folder, every level of it (`find`, `ls -R`): a read of each folder in it. */
  | { readonly kind: "list-tree"; readonly path: string; readonly dirs: readonly string[] }
  | {
      readonly kind: "glob";
      readonly pattern: string;
      readonly dirs: readonly string[];
      readonly mode: "read" | "write" | "read-tree" | "write-tree" | "list-tree";
    }
  | { readonly kind: "host"; readonly host: string }
  /** `git push`/`fetch` without a URL: the remote(s) of the repository at `dirs`. */
  | { readonly kind: "git-remote"; readonly remote: string | undefined; readonly dirs: readonly string[] }
  /** `git show REV:path`: a path of the repository's history, from its top folder (`./x`: from `dirs`). */
  | { readonly kind: "git-path"; readonly path: string; readonly dirs: readonly string[] }
  /** A git operand before `--`: a revision, or a path when one exists there (git's own rule). */
  | {
      readonly kind: "git-operand";
      readonly path: string;
      readonly dirs: readonly string[];
      readonly mode: "read-tree" | "write-tree";
    }
  /** A git pathspec with a wildcard: every path of the history it can match, below `dirs`. */
  | {
      readonly kind: "git-pathspec";
      readonly pattern: string;
      readonly dirs: readonly string[];
      readonly mode: "read" | "write";
    }
  /**
   * A git command's repository (the top folder of the work tree holding `dirs`): read as a folder,
   * and read whole — its history and work tree — unless the command shows nothing of the tree
   * (`metadata`), a pathspec limits it (`limited`, or one of `operands` exists as a path: git's own
   * rule), or it names objects (`REV:path`) and no revision. `worktree`: it may rewrite any file of
   * the work tree, written whole on the same terms.
   */
  | {
      readonly kind: "git-repo";
      readonly dirs: readonly string[];
      readonly metadata: boolean;
      /** it shows the names in the work tree (`git status`), not what they hold: a listing of it */
      readonly lists: boolean;
      readonly limited: boolean;
      readonly operands: readonly string[];
      readonly objects: boolean;
      readonly worktree: boolean;
    }
  | { readonly kind: "exec"; readonly program: string; readonly readOnly: boolean };

export interface ShellReading {
  readonly effects: readonly Effect[];
  /** Why the command cannot be judged exactly (then the answer is at best `ask`). */
  readonly ask: readonly string[];
}

const MAX_COMMAND = 64 * 1024;
const MAX_DIRS = 16;
/** The key of the object shell-quote is handed for each variable (a string: it keeps no symbols). */
const VAR = "__writ_variable__";

/** A word as shell-quote gives it: text, a glob, or a variable's expansion. */
type Word =
  | { readonly t: "text"; readonly s: string }
  | { readonly t: "glob"; readonly s: string }
  | { readonly t: "var" };

interface Prepared {
  readonly text: string;
  readonly ask: string[];
}

/**
 * The raw scan: quotes tracked, newlines made `;`, comments and heredoc bodies removed; every
 * construct shell-quote would misread is an `ask` reason.
 */
export function prepare(command: string): Prepared {
  const ask: string[] = [];
  const flag = (why: string) => {
    if (!ask.includes(why)) ask.push(why);
  };
  let out = "";
  let state: "none" | "single" | "double" = "none";
  const heredocs: { delim: string; strip: boolean; quoted: boolean }[] = [];
  const n = command.length;
  let i = 0;
  const wordStart = () => out.length === 0 || /[\s;|&()<>]$/.test(out);
  while (i < n) {
    const c = command[i]!;
    if (state === "single") {
      out += c;
      if (c === "'") state = "none";
      i++;
      continue;
    }
    if (state === "double") {
      if (c === "\\" && i + 1 < n) {
        out += c + command[i + 1];
        i += 2;
        continue;
      }
      if (c === "`") flag("command substitution (backticks)");
      if (c === "$" && command[i + 1] === "(") flag("command substitution `$(…)`");
      if (c === '"') state = "none";
      out += c;
      i++;
      continue;
    }
    // unquoted
    if (c === "\\") {
      if (command[i + 1] === "\n") {
        i += 2; // a line continuation
        continue;
      }
      out += c + (command[i + 1] ?? "");
      i += 2;
      continue;
    }
    if (c === "'") state = "single";
    else if (c === '"') state = "double";
    else if (c === "`") flag("command substitution (backticks)");
    else if (c === "$") {
      const next = command[i + 1];
      if (next === "(") flag("command substitution `$(…)`");
      else if (next === "'") flag("ANSI-C quoting `$'…'`");
      else if (next === "{") {
        // `${NAME…}`: a variable's expansion, up to its closing brace
        const end = command.indexOf("}", i);
        if (end < 0) flag("an unterminated `${`");
        const inner = command.slice(i, end < 0 ? n : end + 1);
        if (inner.includes("$(") || inner.includes("`")) flag("command substitution `$(…)`");
        out += inner;
        i += inner.length;
        continue;
      }
    } else if (c === "{" || c === "}") {
      flag("brace expansion or a command group `{…}`");
    } else if (c === "[" || c === "]") {
      // `[ … ]` (test) is a word of its own; any other bracket is a glob shell-quote does not expand
      const lone = wordStart() && /^[\s;]|^$/.test(command[i + 1] ?? "");
      const closing = c === "]" && /\s$/.test(out) && /^[\s;|&)]|^$/.test(command[i + 1] ?? "");
      if (!lone && !closing) flag("a bracket glob `[…]`");
    } else if (/[0-9]/.test(c) && wordStart() && /^[0-9]+[<>]/.test(command.slice(i, i + 12))) {
      // `2>file`: the digits name a descriptor, not an operand
      while (/[0-9]/.test(command[i]!)) i++;
      continue;
    } else if (c === "#" && wordStart()) {
      while (i < n && command[i] !== "\n") i++;
      continue;
    } else if (c === "#") flag("a `#` inside a word");
    else if (c === "<" && command[i + 1] === "<" && command[i + 2] !== "<") {
      // a heredoc: `<<[-]DELIM`; the body starts at the next line
      let j = i + 2;
      const strip = command[j] === "-";
      if (strip) j++;
      while (command[j] === " " || command[j] === "\t") j++;
      let delim = "";
      let quoted = false;
      while (j < n && !/[\s;|&()<>]/.test(command[j]!)) {
        const d = command[j]!;
        if (d === "'" || d === '"') {
          quoted = true;
          const end = command.indexOf(d, j + 1);
          if (end < 0) {
            flag("an unterminated quote");
            return { text: out, ask };
          }
          delim += command.slice(j + 1, end);
          j = end + 1;
        } else if (d === "\\") {
          quoted = true;
          delim += command[j + 1] ?? "";
          j += 2;
        } else {
          delim += d;
          j++;
        }
      }
      if (delim.length === 0) {
        flag("a heredoc without a delimiter");
        return { text: out, ask };
      }
      heredocs.push({ delim, strip, quoted });
      out += " ";
      i = j;
      continue;
    } else if (c === "\n") {
      out += " ; ";
      i++;
      // heredoc bodies follow this line, in order
      for (const h of heredocs.splice(0)) {
        let found = false;
        while (i < n) {
          const end = command.indexOf("\n", i);
          const line = command.slice(i, end < 0 ? n : end);
          i = end < 0 ? n : end + 1;
          if ((h.strip ? line.replace(/^\t+/, "") : line) === h.delim) {
            found = true;
            break;
          }
          if (!h.quoted && (line.includes("$(") || line.includes("`"))) {
            flag("command substitution inside a heredoc");
          }
        }
        if (!found) flag(`a heredoc not closed by ${h.delim}`);
      }
      continue;
    }
    out += c;
    i++;
  }
  if (state !== "none") flag("an unterminated quote");
  if (heredocs.length > 0) flag("a heredoc without a body");
  return { text: out, ask };
}

// --- the programs writ knows ------------------------------------------------------------------------

/** Names that change what a later command runs or reads when assigned or exported. */
const DANGEROUS_NAME =
  /^(PATH|IFS|ENV|BASH_ENV|CDPATH|HOME|SHELLOPTS|BASHOPTS|PS4|PROMPT_COMMAND|LD_.*|DYLD_.*|GIT_.*|PYTHON.*|NODE_OPTIONS|NODE_PATH|PERL.*|RUBY.*|LESSOPEN|LESSCLOSE|PAGER|EDITOR|VISUAL)$/;
const KEYWORDS = new Set([
  "if",
  "then",
  "else",
  "elif",
  "fi",
  "for",
  "while",
  "until",
  "do",
  "done",
  "case",
  "esac",
  "select",
  "function",
  "coproc",
  "[[",
  "]]",
]);
const ASK_PROGRAMS: Readonly<Record<string, string>> = {
  eval: "`eval` runs text as a command",
  source: "`source` runs a file as commands",
  ".": "`.` runs a file as commands",
  exec: "`exec` replaces the shell",
  xargs: "`xargs` builds commands from its input",
  sudo: "`sudo` runs a command as another user",
  doas: "`doas` runs a command as another user",
  su: "`su` runs a command as another user",
  alias: "`alias` changes what later words run",
  trap: "`trap` runs text as a command later",
  pushd: "`pushd` changes the directory in ways writ does not follow",
  popd: "`popd` changes the directory in ways writ does not follow",
  awk: "awk programs can run commands and write files",
  gawk: "awk programs can run commands and write files",
  mawk: "awk programs can run commands and write files",
  parallel: "`parallel` builds commands from its input",
  watch: "`watch` runs text as a command",
};
const INTERPRETERS = new Set([
  "sh",
  "bash",
  "zsh",
  "dash",
  "ksh",
  "fish",
  "csh",
  "tcsh",
  "python",
  "python2",
  "python3",
  "node",
  "nodejs",
  "deno",
  "bun",
  "ruby",
  "perl",
  "php",
  "lua",
  "Rscript",
  "pwsh",
  "powershell",
  "osascript",
  "tclsh",
  "tsx",
  "ts-node",
]);
/** Programs with no file operands, reading at most their standard input. */
const NO_FILES = new Set([
  "echo",
  "printf",
  "true",
  "false",
  ":",
  "pwd",
  "whoami",
  "id",
  "uname",
  "sleep",
  "seq",
  "yes",
  "basename",
  "dirname",
  "expr",
  "test",
  "[",
  "which",
  "type",
  "tr",
  "nproc",
  "arch",
  "exit",
  "wait",
  "clear",
  "printenv",
  "tput",
  "locale",
  "uptime",
  "ps",
  "free",
  "df",
  "cal",
  "hostname",
  "jobs",
]);
/** Options that take a value, per program (the value is not a file operand). */
const READERS: Readonly<Record<string, string>> = {
  cat: "",
  tac: "-s",
  nl: "-b -d -f -h -i -l -n -s -v -w",
  head: "-n -c",
  tail: "-n -c -s --pid",
  less: "-b -h -j -k -o -O -p -P -t -T -x -y -z",
  more: "-n",
  wc: "",
  sort: "-k -t -S -T --parallel",
  cut: "-b -c -d -f --output-delimiter",
  paste: "-d",
  od: "-A -j -N -S -t -w",
  hexdump: "-e -n -s",
  strings: "-n -t -e",
  md5sum: "",
  sha1sum: "",
  sha224sum: "",
  sha256sum: "",
  sha384sum: "",
  sha512sum: "",
  b2sum: "-l",
  cksum: "-a",
  file: "-m -e -F",
  stat: "-c -f --format --printf",
  ls: "-w -I -T --color --format --sort --time-style --hide --ignore",
  du: "-d -B -t --exclude --max-depth",
  diff: "-C -U -L -I -x -X --label",
  cmp: "-i -n",
  comm: "",
  fold: "-w",
  column: "-s -c -t",
  rev: "",
  base64: "-w",
  realpath: "",
  readlink: "",
  tree: "-L -P -I -H -T --charset",
  fmt: "-w -p",
  expand: "-t",
  unexpand: "-t",
  look: "-t",
  join: "-1 -2 -t -j -o -e",
  shuf: "-n --random-source",
  split: "",
};
/** Writers: every operand is written. */
const WRITERS: Readonly<Record<string, string>> = {
  touch: "-d -r -t --date --reference",
  mkdir: "-m --mode",
  rmdir: "",
  tee: "",
  truncate: "-s -r --size --reference",
  shred: "-n -s --iterations --size",
};

const NETWORK_QUERY = new Set(["ping", "ping6", "dig", "nslookup", "host", "traceroute", "whois"]);

interface Ctx {
  effects: Effect[];
  ask: string[];
  dirs: string[];
  home: string;
}

function flag(ctx: Ctx, why: string): void {
  if (!ctx.ask.includes(why)) ctx.ask.push(why);
}

function fileEffect(
  ctx: Ctx,
  kind: "read" | "write" | "read-tree" | "write-tree" | "list-tree",
  w: Word,
  what: string,
): void {
  if (w.t === "var") {
    flag(ctx, `a variable where ${what} names a file`);
    return;
  }
  if (w.t === "glob") {
    ctx.effects.push({ kind: "glob", pattern: tilde(w.s, ctx), dirs: [...ctx.dirs], mode: kind });
    return;
  }
  if (w.s === "-" || w.s.length === 0) return; // standard input or output
  ctx.effects.push({ kind, path: tilde(w.s, ctx), dirs: [...ctx.dirs] });
}

/** `~` and `~/x` are the home directory; `~user` is refused to the `ask` side by the caller. */
function tilde(s: string, ctx: Ctx): string {
  if (s === "~") return ctx.home;
  if (s.startsWith("~/")) return join(ctx.home, s.slice(2));
  if (s.startsWith("~")) {
    flag(ctx, `\`${s.split("/")[0]}\`: another user's home directory`);
  }
  return s;
}

function text(w: Word | undefined): string | undefined {
  return w?.t === "text" ? w.s : undefined;
}

/** Splits operands from options: `--` ends options; `valued` options take the next word. */
function operands(
  args: readonly Word[],
  valued: ReadonlySet<string>,
  onOption?: (name: string, value: Word | undefined) => void,
): Word[] {
  const out: Word[] = [];
  let opts = true;
  for (let i = 0; i < args.length; i++) {
    const w = args[i]!;
    const s = text(w);
    if (opts && s === "--") {
      opts = false;
      continue;
    }
    if (opts && s !== undefined && s.startsWith("-") && s.length > 1) {
      const eq = s.indexOf("=");
      const name = eq > 0 ? s.slice(0, eq) : s;
      if (eq > 0) onOption?.(name, { t: "text", s: s.slice(eq + 1) });
      else if (valued.has(name)) {
        onOption?.(name, args[i + 1]);
        i++;
      } else if (!s.startsWith("--") && s.length > 2 && valued.has(s.slice(0, 2))) {
        onOption?.(s.slice(0, 2), { t: "text", s: s.slice(2) }); // `-n5`
      } else onOption?.(name, undefined);
      continue;
    }
    out.push(w);
  }
  return out;
}

function set(spec: string): Set<string> {
  return new Set(spec.split(" ").filter((s) => s.length > 0));
}

function hasFlag(args: readonly Word[], short: string, long?: string): boolean {
  return args.some((w) => {
    const s = text(w);
    if (s === undefined || !s.startsWith("-")) return false;
    if (long !== undefined && (s === long || s.startsWith(`${long}=`))) return true;
    return !s.startsWith("--") && s.slice(1).includes(short);
  });
}

/** A URL's or `user@host`'s host, lower case; undefined when there is none to be sure of. */
export function hostOf(raw: string): string | undefined {
  let s = raw;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) s = `http://${s}`;
  try {
    const u = new URL(s);
    const h = u.hostname
      .toLowerCase()
      .replace(/\.$/, "")
      .replace(/^\[|\]$/g, "");
    return h.length > 0 ? h : undefined;
  } catch {
    return undefined;
  }
}

function hostEffect(ctx: Ctx, w: Word | undefined, what: string): void {
  const s = text(w);
  if (s === undefined) {
    flag(ctx, `${what}: a host writ cannot read`);
    return;
  }
  if (/[{}[\]]/.test(s)) {
    flag(ctx, `${what}: a URL pattern expands to several hosts`);
    return;
  }
  const host = hostOf(s);
  if (host === undefined) {
    flag(ctx, `${what}: ${JSON.stringify(s.slice(0, 100))} is not a host`);
    return;
  }
  ctx.effects.push({ kind: "host", host });
}

/** An scp/rsync/git location: `[user@]host:path` is remote, anything else local. */
function remoteHost(s: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return s.startsWith("file:") ? undefined : hostOf(s);
  const m = /^([^/:]+):/.exec(s);
  if (!m) return undefined;
  return hostOf(m[1]!.includes("@") ? m[1]!.slice(m[1]!.lastIndexOf("@") + 1) : m[1]!);
}

// --- per program ---------------------------------------------------------------------------------------

function reader(ctx: Ctx, name: string, args: readonly Word[]): void {
  const valued = set(READERS[name]!);
  const ops = operands(args, valued, (opt) => {
    if (name === "sort" && opt === "--compress-program")
      flag(ctx, "`sort --compress-program` runs a program");
    if (name === "less" && (opt === "-o" || opt === "-O" || opt === "--log-file"))
      flag(ctx, "`less -o` writes a file");
  });
  const recursive = (name === "diff" && hasFlag(args, "r", "--recursive")) || name === "du";
  // names at every level: a read of each folder below
  const lists = name === "tree" || (name === "ls" && hasFlag(args, "R", "--recursive"));
  if (name === "sort") {
    operands(args, valued, (opt, v) => {
      if ((opt === "-o" || opt === "--output") && v) fileEffect(ctx, "write", v, "sort -o");
    });
  }
  if (name === "split") {
    if (ops[0]) fileEffect(ctx, "read", ops[0], name);
    ctx.effects.push({ kind: "write", path: text(ops[1]) ?? "x", dirs: [...ctx.dirs] });
    return;
  }
  if ((name === "ls" || name === "du" || name === "tree") && ops.length === 0) {
    const kind = lists ? "list-tree" : name === "ls" ? "read" : "read-tree";
    ctx.effects.push({ kind, path: ".", dirs: [...ctx.dirs] });
  }
  for (const w of ops) {
    fileEffect(ctx, lists ? "list-tree" : recursive && name !== "du" ? "read-tree" : "read", w, name);
  }
}

function grep(ctx: Ctx, name: string, args: readonly Word[]): void {
  let pattern = false;
  const valued = set(
    "-e -f -m -A -B -C -d -D --regexp --file --max-count --include --exclude --exclude-dir --label --context --after-context --before-context --color --colour -g --glob -t --type -T --type-not --iglob --max-depth --pre --pre-glob -M --max-columns -j --threads --sort --sortr --ignore-file -E --encoding --replace -r",
  );
  if (name === "grep" || name === "egrep" || name === "fgrep") {
    valued.delete("-r");
    valued.delete("-E");
  }
  if (name !== "rg") valued.delete("-t");
  const ops = operands(args, valued, (opt, v) => {
    if (opt === "-e" || opt === "--regexp") pattern = true;
    if (opt === "-f" || opt === "--file") {
      pattern = true;
      if (v) fileEffect(ctx, "read", v, `${name} -f`);
    }
    if (opt === "--pre" || opt === "--pre-glob") flag(ctx, `\`${name} --pre\` runs a program`);
    if (opt === "--ignore-file" && v) fileEffect(ctx, "read", v, name);
  });
  const files = pattern ? ops : ops.slice(1);
  const listOnly = name === "rg" && hasFlag(args, "\u0000", "--files");
  const recursive =
    name === "rg" || hasFlag(args, "r", "--recursive") || hasFlag(args, "R", "--dereference-recursive");
  // `rg --files` lists the names at every level below its folders
  const mode = listOnly ? "list-tree" : recursive ? "read-tree" : "read";
  if (files.length === 0 && recursive) ctx.effects.push({ kind: mode, path: ".", dirs: [...ctx.dirs] });
  for (const w of listOnly ? [...ops] : files) fileEffect(ctx, mode, w, name);
}

/** sed commands that only print, delete, substitute in memory: no `w`, `r`, `e` and the like. */
export function sedScriptIsSafe(script: string): boolean {
  let i = 0;
  const n = script.length;
  const skipBlank = () => {
    while (i < n && /[\s;]/.test(script[i]!)) i++;
  };
  const address = (): boolean => {
    if (script[i] === "/") {
      const end = closing("/", i + 1);
      if (end < 0) return false;
      i = end + 1;
      while (script[i] === "I" || script[i] === "M") i++;
    } else if (script[i] === "$") i++;
    else while (i < n && /[0-9~]/.test(script[i]!)) i++;
    return true;
  };
  const closing = (d: string, from: number): number => {
    for (let j = from; j < n; j++) {
      if (script[j] === "\\") j++;
      else if (script[j] === d) return j;
      else if (script[j] === "\n") return -1;
    }
    return -1;
  };
  for (skipBlank(); i < n; skipBlank()) {
    if (!address()) return false;
    if (script[i] === ",") {
      i++;
      if (!address()) return false;
    }
    while (script[i] === " " || script[i] === "!") i++;
    const cmd = script[i];
    if (cmd === undefined) return false;
    i++;
    if ("pdqQnNgGhHxPDl=z{}".includes(cmd)) {
      if ((cmd === "q" || cmd === "Q" || cmd === "l") && /[0-9]/.test(script[i] ?? "")) {
        while (/[0-9]/.test(script[i] ?? "")) i++;
      }
      continue;
    }
    if (cmd === "s" || cmd === "y") {
      const d = script[i];
      if (d === undefined || d === "\\" || d === "\n") return false;
      const a = closing(d, i + 1);
      const b = a < 0 ? -1 : closing(d, a + 1);
      if (b < 0) return false;
      i = b + 1;
      const flags = /^[gpiImM0-9]*/.exec(script.slice(i))![0];
      i += flags.length;
      if (cmd === "s" && i < n && !/[\s;}]/.test(script[i]!)) return false; // `w file`, `e` …
      continue;
    }
    if (cmd === "b" || cmd === "t" || cmd === "T" || cmd === ":") {
      while (i < n && !/[;\n]/.test(script[i]!)) i++;
      continue;
    }
    return false; // a, i, c (text: fine but rare), r, R, w, W, e, F, v …: not proven safe
  }
  return true;
}

function sed(ctx: Ctx, args: readonly Word[]): void {
  let script = false;
  let inPlace = false;
  const ops = operands(args, set("-e -f -l --expression --file --line-length"), (opt, v) => {
    if (opt === "-e" || opt === "--expression") {
      script = true;
      const s = text(v);
      if (s === undefined || !sedScriptIsSafe(s))
        flag(ctx, "a sed script that can write files or run commands");
    } else if (opt === "-f" || opt === "--file") {
      script = true;
      flag(ctx, "a sed script read from a file");
    } else if (opt === "--in-place" || (/^-[a-zA-Z]*i/.test(opt) && !opt.startsWith("--"))) inPlace = true;
  });
  if (!script) {
    const s = text(ops[0]);
    if (s === undefined || !sedScriptIsSafe(s))
      flag(ctx, "a sed script that can write files or run commands");
  }
  for (const w of script ? ops : ops.slice(1)) fileEffect(ctx, inPlace ? "write" : "read", w, "sed");
  if (inPlace) for (const w of script ? ops : ops.slice(1)) fileEffect(ctx, "read", w, "sed");
}

function find(ctx: Ctx, args: readonly Word[]): void {
  let i = 0;
  const roots: Word[] = [];
  while (i < args.length && (text(args[i]) === "-H" || text(args[i]) === "-L" || text(args[i]) === "-P")) i++;
  for (; i < args.length; i++) {
    const s = text(args[i]);
    if (s !== undefined && (s.startsWith("-") || s === "(" || s === "!" || s === ")")) break;
    roots.push(args[i]!);
  }
  for (; i < args.length; i++) {
    const s = text(args[i]);
    if (s === undefined) continue;
    if (/^-(exec|execdir|ok|okdir|delete|fprint|fprint0|fprintf|fls)$/.test(s)) {
      flag(ctx, `\`find ${s}\` runs commands or changes files`);
      return;
    }
  }
  if (roots.length === 0) roots.push({ t: "text", s: "." });
  for (const r of roots) fileEffect(ctx, "list-tree", r, "find");
}

function copy(ctx: Ctx, name: "cp" | "mv" | "ln" | "install", args: readonly Word[]): void {
  let target: Word | undefined;
  const ops = operands(
    args,
    set("-t -S -m -o -g --target-directory --suffix --mode --owner --group"),
    (opt, v) => {
      if (opt === "-t" || opt === "--target-directory") target = v;
    },
  );
  const recursive =
    name === "mv" ||
    hasFlag(args, "r", "--recursive") ||
    hasFlag(args, "R") ||
    hasFlag(args, "a", "--archive");
  const dest = target ?? ops.pop();
  if (dest === undefined || ops.length === 0) {
    if (name === "ln" && dest) {
      fileEffect(ctx, "write", { t: "text", s: posix.basename(text(dest) ?? "x") }, name);
      return;
    }
    flag(ctx, `\`${name}\` without a source and a destination`);
    return;
  }
  for (const w of ops) {
    fileEffect(ctx, recursive ? "read-tree" : "read", w, name);
    if (name === "mv") fileEffect(ctx, "write-tree", w, name);
    const d = text(dest);
    const s = text(w);
    if (d !== undefined && s !== undefined) {
      fileEffect(ctx, recursive ? "write-tree" : "write", { t: "text", s: join(d, posix.basename(s)) }, name);
    }
  }
  fileEffect(ctx, recursive ? "write-tree" : "write", dest, name);
}

function tar(ctx: Ctx, args: readonly Word[]): void {
  let mode: string | undefined;
  let archive: Word | undefined;
  let dir: Word | undefined;
  const rest: Word[] = [];
  const takes = "fCTXbKNgI";
  const queue: string[] = [];
  const first = text(args[0]);
  let start = 0;
  if (first !== undefined && !first.startsWith("-")) {
    for (const ch of first) {
      if ("cxtru".includes(ch)) mode = ch;
      if (takes.includes(ch)) queue.push(ch);
    }
    start = 1;
  }
  const assign = (letter: string, v: Word | undefined) => {
    if (letter === "f") archive = v;
    else if (letter === "C") dir = v;
    else if (letter === "I" || letter === "T" || letter === "X" || letter === "F")
      flag(ctx, `\`tar -${letter}\` reads a list or runs a program`);
  };
  for (let i = start; i < args.length; i++) {
    const w = args[i]!;
    const s = text(w);
    if (s !== undefined && s.startsWith("--")) {
      const [name, value] = s.split("=", 2) as [string, string | undefined];
      if (/^--(create|extract|get|list|append|update)$/.test(name))
        mode = {
          "--create": "c",
          "--extract": "x",
          "--get": "x",
          "--list": "t",
          "--append": "r",
          "--update": "u",
        }[name];
      else if (name === "--file") archive = value !== undefined ? { t: "text", s: value } : args[++i];
      else if (name === "--directory") dir = value !== undefined ? { t: "text", s: value } : args[++i];
      else if (
        /^--(to-command|use-compress-program|checkpoint-action|info-script|new-volume-script|files-from|exclude-from|rsh-command)/.test(
          name,
        )
      ) {
        flag(ctx, `\`tar ${name}\` reads a list or runs a program`);
      }
      continue;
    }
    if (s !== undefined && s.startsWith("-") && s.length > 1) {
      for (let k = 1; k < s.length; k++) {
        const ch = s[k]!;
        if ("cxtru".includes(ch)) mode = ch;
        if (takes.includes(ch) || ch === "F") {
          const inline = s.slice(k + 1);
          assign(ch, inline.length > 0 ? { t: "text", s: inline } : args[++i]);
          break;
        }
      }
      continue;
    }
    const letter = queue.shift();
    if (letter !== undefined) assign(letter, w);
    else rest.push(w);
  }
  if (mode === undefined) {
    flag(ctx, "`tar` without a mode writ can read");
    return;
  }
  if (dir !== undefined) {
    const d = text(dir);
    if (d === undefined) {
      flag(ctx, "`tar -C` with a variable directory");
      return;
    }
    ctx.dirs = ctx.dirs.map((x) => (isAbsolute(d) ? d : join(x, d)));
  }
  if (mode === "x") {
    flag(ctx, "`tar x` writes files writ cannot list beforehand");
    return;
  }
  if (archive !== undefined)
    fileEffect(ctx, mode === "t" ? "read" : mode === "c" ? "write" : "write", archive, "tar");
  if (archive !== undefined && (mode === "r" || mode === "u")) fileEffect(ctx, "read", archive, "tar");
  if (archive === undefined && mode === "t")
    flag(ctx, "`tar t` reading an archive from its standard input is fine, but writ cannot tell which");
  for (const w of rest) fileEffect(ctx, "read-tree", w, "tar");
}

function compress(ctx: Ctx, name: string, args: readonly Word[]): void {
  const toStdout = hasFlag(args, "c", "--stdout") || name === "zcat" || name === "bzcat" || name === "xzcat";
  const ops = operands(args, set("-S --suffix"));
  const recursive = hasFlag(args, "r", "--recursive");
  for (const w of ops) {
    fileEffect(ctx, recursive ? "read-tree" : "read", w, name);
    if (!toStdout) fileEffect(ctx, recursive ? "write-tree" : "write", w, name);
  }
}

function removal(ctx: Ctx, name: string, args: readonly Word[]): void {
  const ops = operands(args, set(name === "rm" ? "" : "--from --reference"));
  let list = ops;
  if (name !== "rm") list = ops.slice(1); // chmod MODE / chown OWNER
  const recursive = hasFlag(args, "r", "--recursive") || hasFlag(args, "R");
  for (const w of list) fileEffect(ctx, recursive ? "write-tree" : "write", w, name);
}

function curl(ctx: Ctx, args: readonly Word[]): void {
  const valued = set(
    "-o -d -F -T -H -X -A -e -u -x -b -c -K -w -m -r -E -U -Y -y -z --output --data --data-binary --data-raw --data-ascii --data-urlencode --json --form --form-string --upload-file --header --request --user-agent --referer --user --proxy --cookie --cookie-jar --config --write-out --max-time --range --cert --key --cacert --capath --connect-timeout --retry --url --resolve --connect-to --unix-socket --abstract-unix-socket --interface --proxy-user --output-dir --trace --trace-ascii --stderr --dump-header -D --limit-rate --max-filesize",
  );
  let remoteName = false;
  const urls: Word[] = [];
  const ops = operands(args, valued, (opt, v) => {
    const s = text(v);
    switch (opt) {
      case "-o":
      case "--output":
      case "-c":
      case "--cookie-jar":
      case "-D":
      case "--dump-header":
      case "--trace":
      case "--trace-ascii":
      case "--stderr":
        if (v) fileEffect(ctx, "write", v, "curl");
        break;
      case "-T":
      case "--upload-file":
        if (v) fileEffect(ctx, "read", v, "curl");
        break;
      case "-d":
      case "--data":
      case "--data-binary":
      case "--data-ascii":
      case "--data-urlencode":
      case "--json":
      case "-F":
      case "--form": {
        if (s === undefined) {
          flag(ctx, "curl data from a variable");
          break;
        }
        const at = /(?:^|=)[@<](.+)$/.exec(s);
        if (at) fileEffect(ctx, "read", { t: "text", s: at[1]!.split(";")[0]! }, "curl");
        break;
      }
      case "-b":
      case "--cookie":
        if (s !== undefined && !s.includes("=")) fileEffect(ctx, "read", v!, "curl");
        break;
      case "-x":
      case "--proxy":
        hostEffect(ctx, v, "curl --proxy");
        break;
      case "--url":
        if (v) urls.push(v);
        break;
      case "-K":
      case "--config":
      case "--resolve":
      case "--connect-to":
      case "--unix-socket":
      case "--abstract-unix-socket":
        flag(ctx, `\`curl ${opt}\` sends the request somewhere its URL does not say`);
        break;
      case "-O":
      case "--remote-name":
      case "--remote-name-all":
        remoteName = true;
        break;
      case "--cert":
      case "--key":
      case "--cacert":
      case "-E":
        if (v) fileEffect(ctx, "read", v, "curl");
        break;
      default:
        if (/^-[a-zA-Z]*O/.test(opt) && !opt.startsWith("--")) remoteName = true;
    }
  });
  urls.push(...ops);
  if (urls.length === 0) flag(ctx, "`curl` without a URL writ can read");
  for (const u of urls) {
    hostEffect(ctx, u, "curl");
    const s = text(u);
    if (remoteName && s !== undefined) {
      const last = s.split(/[?#]/)[0]!.split("/").pop() || "index.html";
      ctx.effects.push({ kind: "write", path: last, dirs: [...ctx.dirs] });
    }
  }
}

function wget(ctx: Ctx, args: readonly Word[]): void {
  const valued = set(
    "-O -o -a -P -i -e -t -T -w -U -Q -l --output-document --output-file --append-output --directory-prefix --input-file --execute --tries --timeout --wait --user-agent --header --post-data --post-file --body-file --body-data --method --user --password --load-cookies --save-cookies --quota --level --accept --reject --domains --exclude-domains --ca-certificate --certificate --private-key --config",
  );
  let saved = false;
  const ops = operands(args, valued, (opt, v) => {
    switch (opt) {
      case "-O":
      case "--output-document":
        saved = true;
        if (v) fileEffect(ctx, "write", v, "wget");
        break;
      case "-o":
      case "-a":
      case "--output-file":
      case "--append-output":
      case "--save-cookies":
        if (v) fileEffect(ctx, "write", v, "wget");
        break;
      case "--post-file":
      case "--body-file":
      case "--load-cookies":
      case "--certificate":
      case "--private-key":
      case "--ca-certificate":
        if (v) fileEffect(ctx, "read", v, "wget");
        break;
      case "-P":
      case "--directory-prefix":
        saved = true;
        if (v) fileEffect(ctx, "write-tree", v, "wget");
        break;
      case "-i":
      case "--input-file":
      case "-e":
      case "--execute":
      case "--config":
        flag(ctx, `\`wget ${opt}\` takes its URLs or commands from elsewhere`);
        break;
    }
  });
  if (ops.length === 0) flag(ctx, "`wget` without a URL writ can read");
  for (const u of ops) {
    hostEffect(ctx, u, "wget");
    const s = text(u);
    if (!saved && s !== undefined) {
      const last = s.split(/[?#]/)[0]!.split("/").pop() || "index.html";
      ctx.effects.push({ kind: "write", path: last, dirs: [...ctx.dirs] });
    }
  }
}

function netcat(ctx: Ctx, name: string, args: readonly Word[]): void {
  const ops = operands(
    args,
    set("-p -s -w -i -x -X -q -W -T -O -I -V --source --source-port --wait --proxy --proxy-type"),
    (opt, v) => {
      if (
        /^(-e|-c|--exec|--sh-exec|--lua-exec)$/.test(opt) ||
        (/^-[a-zA-Z]*[ec]/.test(opt) && !opt.startsWith("--"))
      ) {
        flag(ctx, `\`${name} ${opt}\` runs a program on the connection`);
      }
      if (opt === "-l" || opt === "--listen" || (/^-[a-zA-Z]*l/.test(opt) && !opt.startsWith("--"))) {
        flag(ctx, `\`${name}\` listening for connections`);
      }
      if (opt === "-x" || opt === "--proxy") hostEffect(ctx, v, name);
    },
  );
  if (ops.length === 0) {
    flag(ctx, `\`${name}\` without a host writ can read`);
    return;
  }
  hostEffect(ctx, ops[0], name);
}

function ssh(ctx: Ctx, args: readonly Word[]): void {
  const ops = operands(
    args,
    set("-p -i -l -o -F -J -L -R -D -W -b -c -e -m -S -O -Q -w -B -E -I"),
    (opt, v) => {
      if (opt === "-i" && v) fileEffect(ctx, "read", v, "ssh -i");
      else if (opt === "-J") hostEffect(ctx, v, "ssh -J");
      else if (/^-(o|F|L|R|D|W|S|O|w)$/.test(opt))
        flag(ctx, `\`ssh ${opt}\` changes where or how ssh connects`);
    },
  );
  if (ops.length === 0) {
    flag(ctx, "`ssh` without a host");
    return;
  }
  const s = text(ops[0]);
  hostEffect(ctx, s === undefined ? ops[0] : { t: "text", s: s.slice(s.lastIndexOf("@") + 1) }, "ssh");
}

function scpLike(ctx: Ctx, name: "scp" | "rsync", args: readonly Word[]): void {
  const valued =
    name === "scp"
      ? set("-P -i -o -F -J -S -c -l")
      : set(
          "-e -f --rsh --rsync-path --exclude --include --exclude-from --include-from --files-from --filter --password-file --port --chmod --log-file -T --temp-dir",
        );
  const ops = operands(args, valued, (opt, v) => {
    if (opt === "-i" && v) fileEffect(ctx, "read", v, name);
    else if (opt === "-J") hostEffect(ctx, v, name);
    else if (
      /^(-o|-F|-S|-e|--rsh|--rsync-path|--files-from|--exclude-from|--include-from|--password-file)$/.test(
        opt,
      )
    ) {
      flag(ctx, `\`${name} ${opt}\` runs a program or reads a list`);
    }
  });
  const recursive =
    name === "rsync"
      ? hasFlag(args, "r", "--recursive") || hasFlag(args, "a", "--archive")
      : hasFlag(args, "r");
  if (ops.length < 2) {
    flag(ctx, `\`${name}\` without a source and a destination`);
    return;
  }
  const dest = ops.pop()!;
  for (const w of [...ops, dest]) {
    const s = text(w);
    if (s === undefined) {
      flag(ctx, `\`${name}\` with a variable location`);
      return;
    }
    const host = s.includes("::") ? hostOf(s.split("::")[0]!.split("@").pop()!) : remoteHost(s);
    if (host !== undefined) ctx.effects.push({ kind: "host", host });
    else if (/^[^/]+:/.test(s)) {
      flag(ctx, `\`${name}\`: ${JSON.stringify(s)} is not a location writ can read`);
      return;
    } else
      fileEffect(
        ctx,
        w === dest ? (recursive ? "write-tree" : "write") : recursive ? "read-tree" : "read",
        w,
        name,
      );
  }
}

const GIT_LOCAL = new Set([
  "status",
  "log",
  "diff",
  "show",
  "branch",
  "add",
  "commit",
  "checkout",
  "switch",
  "restore",
  "stash",
  "tag",
  "rev-parse",
  "merge",
  "rebase",
  "reset",
  "init",
  "blame",
  "grep",
  "ls-files",
  "mv",
  "rm",
  "cherry-pick",
  "revert",
  "describe",
  "shortlog",
  "reflog",
  "worktree",
  "clean",
  "apply",
  "am",
  "format-patch",
  "notes",
  "bisect",
  "rev-list",
  "ls-tree",
  "cat-file",
  "version",
  "help",
]);
const GIT_NETWORK = new Set(["push", "fetch", "pull", "ls-remote"]);
const GIT_READ_ONLY = new Set([
  "status",
  "log",
  "diff",
  "show",
  "blame",
  "grep",
  "ls-files",
  "rev-parse",
  "describe",
  "shortlog",
  "reflog",
  "rev-list",
  "ls-tree",
  "cat-file",
  "version",
  "help",
]);

function git(ctx: Ctx, args: readonly Word[]): boolean {
  let i = 0;
  for (; i < args.length; i++) {
    const s = text(args[i]);
    if (s === undefined) {
      flag(ctx, "`git` with a variable word");
      return false;
    }
    if (s === "-C") {
      const d = text(args[++i]);
      if (d === undefined) {
        flag(ctx, "`git -C` with a variable directory");
        return false;
      }
      ctx.dirs = ctx.dirs.map((x) => (isAbsolute(d) ? d : join(x, d)));
      continue;
    }
    if (
      s === "-c" ||
      s.startsWith("--exec-path") ||
      s.startsWith("--git-dir") ||
      s.startsWith("--work-tree") ||
      s.startsWith("--config-env")
    ) {
      flag(ctx, `\`git ${s.split("=")[0]}\` changes what git runs or where it reads`);
      return false;
    }
    if (!s.startsWith("-")) break;
  }
  const sub = text(args[i]);
  const rest = args.slice(i + 1);
  if (sub === undefined) return true;
  if (rest.some((w) => /^--(upload-pack|receive-pack|exec)\b/.test(text(w) ?? ""))) {
    flag(ctx, "`git --upload-pack`/`--receive-pack` runs a program");
    return false;
  }
  if (GIT_NETWORK.has(sub)) {
    const ops = operands(
      rest,
      set("-o --push-option --repo --depth --shallow-since --recurse-submodules -j --jobs"),
    );
    const where = text(ops[0]);
    if (ops[0] !== undefined && where === undefined) {
      flag(ctx, "`git` to a variable remote");
      return false;
    }
    if (where !== undefined && (where.includes("/") || where.includes(":"))) {
      const host = remoteHost(where);
      if (host === undefined) flag(ctx, `\`git ${sub}\` to a local path or an unreadable URL`);
      else ctx.effects.push({ kind: "host", host });
    } else ctx.effects.push({ kind: "git-remote", remote: where, dirs: [...ctx.dirs] });
    // a push sends the history, a pull merges it into the work tree: the whole repository
    ctx.effects.push({
      kind: "git-repo",
      dirs: [...ctx.dirs],
      metadata: sub === "fetch" || sub === "ls-remote",
      lists: false,
      limited: false,
      operands: [],
      objects: false,
      worktree: sub === "pull",
    });
    return false;
  }
  if (sub === "clone") {
    const ops = operands(
      rest,
      set(
        "-b -o -c --branch --origin --depth --config --template --reference --separate-git-dir -u --upload-pack -j --jobs --filter",
      ),
    );
    const url = text(ops[0]);
    const host = url === undefined ? undefined : remoteHost(url);
    if (host === undefined) flag(ctx, "`git clone` from a local path or an unreadable URL");
    else ctx.effects.push({ kind: "host", host });
    const dest =
      ops[1] ??
      (url === undefined
        ? undefined
        : { t: "text" as const, s: posix.basename(url.replace(/\.git$/, "").replace(/:/g, "/")) });
    if (dest) fileEffect(ctx, "write-tree", dest, "git clone");
    return false;
  }
  if (sub === "remote" || sub === "submodule" || sub === "config") {
    const verb = text(rest[0]);
    if (sub === "remote" && (verb === undefined || verb === "-v" || verb === "show" || verb === "get-url")) {
      return true;
    }
    if (
      sub === "config" &&
      rest.every((w) => /^(--get|--get-all|--list|-l|--show-origin|[A-Za-z0-9_.-]+)$/.test(text(w) ?? "")) &&
      rest.length <= 2 &&
      rest.some((w) => /^(--get|--get-all|--list|-l)$/.test(text(w) ?? ""))
    ) {
      return true;
    }
    flag(ctx, `\`git ${sub}\` changes remotes or configuration`);
    return false;
  }
  if (!GIT_LOCAL.has(sub)) {
    flag(ctx, `\`git ${sub}\`: a subcommand (or alias) writ does not know`);
    return false;
  }
  // what a local command reads: any path it names, and the repository — whole unless a path limits it
  const named = gitPaths(ctx, sub, rest);
  ctx.effects.push({
    kind: "git-repo",
    dirs: [...ctx.dirs],
    metadata:
      (GIT_TREE_UNSEEN.has(sub) && !rest.some((w) => GIT_SHOWS_CHANGES.test(text(w) ?? ""))) ||
      (GIT_HISTORY.has(sub) &&
        rest.every((w) => !(text(w) ?? "-").startsWith("-") || GIT_NO_NAMES.test(text(w)!))),
    lists: sub === "status" && !rest.some((w) => GIT_STATUS_SHOWS_CHANGES.test(text(w) ?? "")),
    ...named,
    worktree: GIT_WORK_TREE.has(sub),
  });
  if (!GIT_READ_ONLY.has(sub)) ctx.effects.push({ kind: "write", path: ".", dirs: [...ctx.dirs] });
  return GIT_READ_ONLY.has(sub);
}

/** Subcommands that show nothing of the tree's files or history (names, refs, hashes at most). */
const GIT_TREE_UNSEEN = new Set([
  "branch",
  "tag",
  "rev-parse",
  "describe",
  "version",
  "help",
  "init",
  "commit",
  "add",
]);
/** Options with which they do show changes (`add -p`, `commit -v`, `--dry-run` …). */
const GIT_SHOWS_CHANGES = /^(-[A-Za-z]*[piev][A-Za-z]*|--(patch|interactive|edit|verbose|dry-run)(=.*)?)$/;
/** History walkers that, with only the options of `GIT_NO_NAMES`, show commits and refs, no path. */
const GIT_HISTORY = new Set(["log", "shortlog", "reflog", "rev-list"]);
/**
 * Options that show neither a file's content nor a path (an allow-list: `--stat`, `--name-only`,
 * `-p`, `-S`/`-G` searches and every option not listed here make it a read of the whole history).
 */
const GIT_NO_NAMES =
  /^(--oneline|--graph|--all|--branches|--tags|--reverse|--no-merges|--merges|--first-parent|--abbrev-commit|--no-abbrev-commit|--decorate(=(short|full|auto|no))?|--no-decorate|--no-patch|--no-color|--date-order|--topo-order|--relative-date|--count|-[sne]{1,3}|-\d{1,9}|--max-count=\d{1,9}|--skip=\d{1,9}|--(since|until|after|before|author|committer|date|grep)=[^\n]*|--(format|pretty)=[^%\n]*(%(h|H|an|ae|ad|ar|cn|ce|cd|cr|s|d|D|n|%|Cred|Cgreen|Creset|Cblue|Cyellow)[^%\n]*)*)$/;
/** `git status` options that show what changed, not only which paths (`-v`, `--verbose`). */
const GIT_STATUS_SHOWS_CHANGES = /^(-[A-Za-z]*v[A-Za-z]*|--verbose)$/;
/** Subcommands that rewrite files of the work tree. */
const GIT_WORK_TREE = new Set([
  "checkout",
  "switch",
  "restore",
  "stash",
  "merge",
  "rebase",
  "reset",
  "cherry-pick",
  "revert",
  "am",
  "apply",
  "clean",
  "bisect",
  "worktree",
]);

const GIT_VALUED = set(
  "-m -F -C -c -n -b -B --author --date --format --pretty --since --until --grep -S -G -L -U --message --file --depth --output --output-directory -e --regexp -f",
);

/**
 * The paths a local git command names, read (and written, for a command that changes the work
 * tree): `REV:path` (from the repository's top), pathspecs after `--` (a wildcard one as the region
 * it can match in the history), operands before it that exist as paths, `-L …:file`, `-F file`;
 * `--output`/`-o` written. Pathspec magic (`:(glob)`, `:/`) is an `ask`.
 */
function gitPaths(
  ctx: Ctx,
  sub: string,
  rest: readonly Word[],
): { limited: boolean; operands: string[]; objects: boolean } {
  const what = `git ${sub}`;
  const writes = !GIT_READ_ONLY.has(sub);
  const named = { limited: false, operands: [] as string[], objects: false };
  let patternGiven = false;
  const ops = operands(
    rest,
    sub === "format-patch" ? new Set([...GIT_VALUED, "-o"]) : GIT_VALUED,
    (opt, v) => {
      if (!v) return;
      if (opt === "-F" || opt === "--file" || opt === "-f") fileEffect(ctx, "read", v, what);
      else if (opt === "--output") fileEffect(ctx, "write", v, what);
      else if (opt === "--output-directory" || opt === "-o") fileEffect(ctx, "write-tree", v, what);
      else if (opt === "-L") {
        const s = text(v);
        if (s !== undefined && s.includes(":"))
          fileEffect(ctx, "read", { t: "text", s: s.slice(s.lastIndexOf(":") + 1) }, what);
      }
      if (opt === "-e" || opt === "--regexp" || opt === "-f") patternGiven = true;
    },
  );
  const dashdash = rest.findIndex((w) => text(w) === "--");
  const specs = new Set(dashdash < 0 ? [] : rest.slice(dashdash + 1));
  // `git grep PATTERN`: the first operand is the pattern, not a path
  const skip = sub === "grep" && !patternGiven && ops.length > 0 && !specs.has(ops[0]!) ? 1 : 0;
  for (const w of ops.slice(skip)) {
    const s = text(w);
    if (w.t === "glob") {
      named.limited = true;
      fileEffect(ctx, "read-tree", w, what);
      if (writes) fileEffect(ctx, "write-tree", w, what);
      continue;
    }
    if (s === undefined) {
      flag(ctx, `a variable where ${what} names a path or revision`);
      continue;
    }
    if (specs.has(w)) {
      // an exclusion alone limits nothing: git then shows everything else
      if (!/^:[!^]/.test(s)) named.limited = true;
      if (/^:[(/!^]/.test(s) && !/^:[!^][^(]/.test(s))
        flag(ctx, `\`${what} ${s}\`: pathspec magic writ does not read`);
      else if (/^:[!^]/.test(s))
        continue; // an exclusion only narrows
      else if (/[*?[]/.test(s)) {
        ctx.effects.push({ kind: "git-pathspec", pattern: s, dirs: [...ctx.dirs], mode: "read" });
        if (writes)
          ctx.effects.push({ kind: "git-pathspec", pattern: s, dirs: [...ctx.dirs], mode: "write" });
      } else {
        fileEffect(ctx, "read-tree", w, what);
        if (writes) fileEffect(ctx, "write-tree", w, what);
      }
      continue;
    }
    const colon = /^(?::[0-3]:|[^/:]*:)/.exec(s);
    if (colon !== null) {
      if (s.startsWith(":/")) flag(ctx, `\`${what} ${s}\`: a revision found by its message`);
      else ctx.effects.push({ kind: "git-path", path: s.slice(colon[0].length), dirs: [...ctx.dirs] });
      named.objects = true;
      continue;
    }
    const path = tilde(s, ctx);
    named.operands.push(path);
    ctx.effects.push({ kind: "git-operand", path, dirs: [...ctx.dirs], mode: "read-tree" });
    if (writes) ctx.effects.push({ kind: "git-operand", path, dirs: [...ctx.dirs], mode: "write-tree" });
  }
  return named;
}

/** Skips `!` and leading assignments; returns the index of the first word after them. */
function skipAssignments(ctx: Ctx, words: Word[]): number {
  let k = 0;
  while (k < words.length && text(words[k]) === "!") k++;
  // leading assignments
  while (k < words.length) {
    const s = text(words[k]);
    const m = s === undefined ? null : /^([A-Za-z_][A-Za-z0-9_]*)\+?=/.exec(s);
    if (!m) break;
    if (DANGEROUS_NAME.test(m[1]!)) flag(ctx, `assigning ${m[1]} changes what commands run or read`);
    k++;
    // shell-quote splits `a=$X` into `a=` and the variable: the variable belongs to the assignment
    while (k < words.length && words[k]!.t === "var" && (text(words[k - 1]) ?? "").endsWith("=")) k++;
  }
  return k;
}

/** Skips the options of `nice`, `stdbuf`, `timeout` or `env` (`w`) from index `k`; undefined when the wrapper changes what runs. */
function skipWrapperOptions(ctx: Ctx, words: Word[], w: string, k: number): number | undefined {
  for (;;) {
    const s = text(words[k]);
    if (s === undefined) break;
    if (
      w === "env" &&
      (s === "-S" || s.startsWith("--split-string") || s === "-C" || s.startsWith("--chdir"))
    ) {
      flag(ctx, `\`env ${s}\` changes what runs`);
      return undefined;
    }
    if (w === "env" && (s === "-u" || s === "--unset")) k += 2;
    else if (w === "nice" && s === "-n") k += 2;
    else if (s.startsWith("-")) k++;
    else if (w === "env" && /^[A-Za-z_][A-Za-z0-9_]*=/.test(s)) {
      if (DANGEROUS_NAME.test(s.split("=")[0]!))
        flag(ctx, `assigning ${s.split("=")[0]} changes what commands run or read`);
      k++;
    } else if (w === "timeout" && /^[0-9.]+[smhd]?$/.test(s)) {
      k++;
      break;
    } else break;
  }
  return k;
}

/** Skips wrappers that run the rest as a command from index `k`; undefined when nothing is left to read. */
function skipWrappers(ctx: Ctx, words: Word[], k: number): number | undefined {
  for (;;) {
    const w = text(words[k]);
    if (w === "nohup" || w === "builtin" || w === "time") k++;
    else if (w === "command") {
      const next = text(words[k + 1]);
      if (next === "-v" || next === "-V") return undefined;
      k++;
    } else if (w === "nice" || w === "stdbuf" || w === "timeout" || w === "env") {
      const after = skipWrapperOptions(ctx, words, w, k + 1);
      if (after === undefined) return undefined;
      k = after;
    } else break;
  }
  return k;
}

/** The program name of a command's head word; undefined (after flagging) when writ cannot read what it runs. */
function programName(ctx: Ctx, head: Word): string | undefined {
  if (head.t !== "text") {
    flag(ctx, head.t === "var" ? "a variable in command position" : "a glob in command position");
    return undefined;
  }
  let name = head.s;
  if (name.includes("/")) {
    const base = posix.basename(name);
    if (/^\/(usr\/(local\/)?)?s?bin\/[^/]+$/.test(name) || /^\/opt\/homebrew\/bin\/[^/]+$/.test(name))
      name = base;
    else {
      ctx.effects.push({ kind: "exec", program: name, readOnly: false });
      ctx.effects.push({ kind: "read", path: name, dirs: [...ctx.dirs] });
      flag(ctx, `\`${name}\` runs a program writ cannot read`);
      return undefined;
    }
  }
  if (KEYWORDS.has(name)) {
    flag(ctx, `the shell keyword \`${name}\``);
    return undefined;
  }
  return name;
}

/** `cd`: follows every directory the command may be in. */
function cd(ctx: Ctx, args: Word[]): void {
  const to = args.find((w) => text(w) !== "-P" && text(w) !== "-L" && text(w) !== "--");
  if (to !== undefined && to.t !== "text") {
    flag(ctx, "`cd` to a variable or a glob");
    return;
  }
  const d = to === undefined ? ctx.home : tilde(to.s, ctx);
  if (d === "-") {
    flag(ctx, "`cd -`");
    return;
  }
  const next = new Set(ctx.dirs);
  for (const x of ctx.dirs) next.add(isAbsolute(d) ? d : join(x, d));
  if (next.size > MAX_DIRS) {
    flag(ctx, "too many `cd`s to follow");
    return;
  }
  ctx.dirs = [...next];
}

const SHELL_STATE = set("set export unset declare local readonly typeset shopt umask");

/** A builtin that changes the shell's state (`set`, `export`, ...): flags what changes what runs or reads. */
function shellState(ctx: Ctx, name: string, args: Word[]): void {
  for (const w of args) {
    const s = text(w);
    if (s === undefined) continue;
    if (name === "set" && !/^[-+][a-zA-Z]+$|^pipefail$|^errexit$|^nounset$|^xtrace$|^-o$|^\+o$/.test(s)) {
      flag(ctx, "`set` with operands changes the positional parameters");
      return;
    }
    const v = s.split("=")[0]!;
    if (DANGEROUS_NAME.test(v)) {
      flag(ctx, `\`${name} ${v}\` changes what commands run or read`);
      return;
    }
    if (name === "shopt" && /^(expand_aliases|extdebug)$/.test(s)) {
      flag(ctx, `\`shopt ${s}\``);
      return;
    }
  }
}

/** `jq`: the filter file and the input files it reads. */
function jq(ctx: Ctx, args: Word[]): void {
  let filter = false;
  const ops = operands(
    args,
    set("--arg --argjson --slurpfile --rawfile --indent --tab -f --from-file -L"),
    (opt, v) => {
      if (opt === "-f" || opt === "--from-file") {
        filter = true;
        if (v) fileEffect(ctx, "read", v, "jq");
      }
      if (opt === "--slurpfile" || opt === "--rawfile")
        flag(ctx, `\`jq ${opt}\` reads a file writ did not look up`);
    },
  );
  for (const w of filter ? ops : ops.slice(1)) fileEffect(ctx, "read", w, "jq");
}

/** `dd`: its `if=` and `of=` files. */
function dd(ctx: Ctx, args: Word[]): void {
  for (const w of args) {
    const s = text(w);
    if (s?.startsWith("if=")) fileEffect(ctx, "read", { t: "text", s: s.slice(3) }, "dd");
    else if (s?.startsWith("of=")) fileEffect(ctx, "write", { t: "text", s: s.slice(3) }, "dd");
  }
}

/** A network query (`ping`, `dig`, ...): the hosts it reaches. */
function networkQuery(ctx: Ctx, name: string, args: Word[]): void {
  const ops = operands(args, set("-c -i -t -p -W -w -s -q -h -x -m -f -b"));
  const target = ops.find((w) => !(text(w) ?? "").startsWith("@") && !/^[A-Z]+$/.test(text(w) ?? ""));
  for (const w of ops)
    if ((text(w) ?? "").startsWith("@")) hostEffect(ctx, { t: "text", s: text(w)!.slice(1) }, name);
  if (target === undefined) flag(ctx, `\`${name}\` without a host`);
  else hostEffect(ctx, target, name);
}

/** `uniq`, `xxd` or `iconv`: reads its first operand, writes its second (or iconv's output); returns whether it only reads. */
function inputOutput(ctx: Ctx, name: string, args: Word[]): boolean {
  let readOnly = true;
  const ops = operands(
    args,
    set("-f -s -w -c -g -l -o -s -t --skip-fields --skip-chars --check-chars --from-code --to-code --output"),
    (opt, v) => {
      if ((opt === "-o" || opt === "--output") && name === "iconv" && v) fileEffect(ctx, "write", v, name);
    },
  );
  if (ops[0]) fileEffect(ctx, "read", ops[0], name);
  if (ops[1]) {
    readOnly = false;
    fileEffect(ctx, "write", ops[1], name);
  }
  return readOnly;
}

/** A program that reads or writes files: records its effects; returns whether it only reads. */
function fileProgram(ctx: Ctx, name: string, args: Word[]): boolean | undefined {
  if (READERS[name] !== undefined) reader(ctx, name, args);
  else if (WRITERS[name] !== undefined) {
    for (const w of operands(args, set(WRITERS[name]!))) fileEffect(ctx, "write", w, name);
    return false;
  } else if (name === "grep" || name === "egrep" || name === "fgrep" || name === "rg") grep(ctx, name, args);
  else if (name === "sed") {
    sed(ctx, args);
    return !hasFlag(args, "i", "--in-place");
  } else if (name === "find") find(ctx, args);
  else if (name === "jq") jq(ctx, args);
  else if (name === "cp" || name === "mv" || name === "ln" || name === "install") {
    copy(ctx, name, args);
    return false;
  } else if (name === "rm" || name === "chmod" || name === "chown" || name === "chgrp") {
    removal(ctx, name, args);
    return false;
  } else if (name === "tar") {
    tar(ctx, args);
    return false;
  } else if (/^(gzip|gunzip|bzip2|bunzip2|xz|unxz|zstd|unzstd|zcat|bzcat|xzcat|lz4)$/.test(name)) {
    compress(ctx, name, args);
    return name.endsWith("cat");
  } else if (name === "dd") {
    dd(ctx, args);
    return false;
  } else if (name === "uniq" || name === "xxd" || name === "iconv") return inputOutput(ctx, name, args);
  else return undefined;
  return true;
}

/** A program that reaches the network or a repository: records its effects; returns whether it only reads. */
function remoteProgram(ctx: Ctx, name: string, args: Word[]): boolean | undefined {
  if (name === "curl") curl(ctx, args);
  else if (name === "wget") wget(ctx, args);
  else if (name === "nc" || name === "ncat" || name === "netcat" || name === "telnet")
    netcat(ctx, name, args);
  else if (name === "ssh") ssh(ctx, args);
  else if (name === "scp" || name === "rsync") scpLike(ctx, name, args);
  else if (NETWORK_QUERY.has(name)) networkQuery(ctx, name, args);
  else if (name === "git") return git(ctx, args);
  else return undefined;
  return false;
}

/** A program: records its effects, flagging what writ cannot read. */
function program(ctx: Ctx, name: string, args: Word[]): void {
  if (NO_FILES.has(name)) {
    ctx.effects.push({ kind: "exec", program: name, readOnly: true });
    if (name === "printf" && args.some((w) => text(w) === "-v")) flag(ctx, "`printf -v` assigns a variable");
    return;
  }
  if (INTERPRETERS.has(name)) {
    ctx.effects.push({ kind: "exec", program: name, readOnly: false });
    flag(ctx, `\`${name}\` runs code writ cannot read (inline, from a file or its standard input)`);
    return;
  }
  if (args.some((w) => w.t === "var")) {
    ctx.effects.push({ kind: "exec", program: name, readOnly: false });
    flag(ctx, `a variable among the operands of \`${name}\``);
    return;
  }
  const readOnly = fileProgram(ctx, name, args) ?? remoteProgram(ctx, name, args);
  if (readOnly === undefined) {
    ctx.effects.push({ kind: "exec", program: name, readOnly: false });
    flag(ctx, `writ does not know what \`${name}\` touches`);
    return;
  }
  ctx.effects.push({ kind: "exec", program: name, readOnly });
}

/** One simple command: its words after assignments and wrappers; records its effects and what to ask about. */
function command(ctx: Ctx, words: Word[]): void {
  const k = skipWrappers(ctx, words, skipAssignments(ctx, words));
  if (k === undefined || k >= words.length) return;
  const name = programName(ctx, words[k]!);
  if (name === undefined) return;
  const args = words.slice(k + 1);
  const why = ASK_PROGRAMS[name];
  if (why !== undefined) {
    ctx.effects.push({ kind: "exec", program: name, readOnly: false });
    flag(ctx, why);
  } else if (name === "cd") cd(ctx, args);
  else if (SHELL_STATE.has(name)) shellState(ctx, name, args);
  else program(ctx, name, args);
}

const REDIRECT_READ = new Set(["<", "<&"]);
const REDIRECT_WRITE = new Set([">", ">>", ">|", "&>", "&>>", ">&"]);

/** Reads one command line. `cwd` and `home` are absolute. */
export function readShell(commandLine: string, cwd: string, home: string): ShellReading {
  if (commandLine.length > MAX_COMMAND) return { effects: [], ask: ["the command is too long to read"] };
  const prepared = prepare(commandLine);
  const ctx: Ctx = { effects: [], ask: [...prepared.ask], dirs: [cwd], home };
  let tokens: ReturnType<typeof parse>;
  try {
    tokens = parse(prepared.text, (key) => ({ [VAR]: key }) as unknown as string);
  } catch {
    return { effects: [], ask: ["the command does not parse"] };
  }
  // a stack of open subshells and process substitutions: each keeps its own directory and words
  const stack: { words: Word[]; dirs: string[] }[] = [];
  let words: Word[] = [];
  const finish = () => {
    if (words.length > 0) command(ctx, words);
    words = [];
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (typeof t === "string") {
      words.push({ t: "text", s: t });
      continue;
    }
    if (typeof t === "object" && t !== null && VAR in t) {
      words.push({ t: "var" });
      continue;
    }
    if ("comment" in t) {
      flag(ctx, "a `#` inside a word");
      continue;
    }
    if (!("op" in t)) {
      flag(ctx, "a word writ cannot read");
      continue;
    }
    const op = t.op as string;
    if (op === "glob") {
      words.push({ t: "glob", s: (t as { pattern: string }).pattern });
      continue;
    }
    if (op === "(" || op === "<(" || op === ">(") {
      if (op === "(" && words.length > 0) flag(ctx, "a `(` inside a command");
      stack.push({ words, dirs: ctx.dirs });
      words = [];
      continue;
    }
    if (op === ")") {
      finish();
      const outer = stack.pop();
      if (outer === undefined) {
        flag(ctx, "an unbalanced `)`");
        continue;
      }
      words = outer.words;
      ctx.dirs = outer.dirs;
      continue;
    }
    if (op === ";" || op === "&&" || op === "||" || op === "|" || op === "|&" || op === "&") {
      finish();
      continue;
    }
    if (op === ";;" || op === ";&" || op === ";;&") {
      finish();
      flag(ctx, "a `case` clause");
      continue;
    }
    // a redirection: its target is the next word (a descriptor before it was dropped by `prepare`)
    const target = tokens[i + 1];
    i++;
    const w: Word =
      typeof target === "string"
        ? { t: "text", s: target }
        : typeof target === "object" && target !== null && VAR in target
          ? { t: "var" }
          : typeof target === "object" && target !== null && "op" in target && target.op === "glob"
            ? { t: "glob", s: (target as unknown as { pattern: string }).pattern }
            : { t: "var" };
    if (op === "<<<") continue; // a here-string: data
    if ((op === ">&" || op === "<&") && w.t === "text" && /^([0-9]+-?|-)$/.test(w.s)) continue; // fd duplication
    if (w.t === "glob") {
      flag(ctx, "a glob as a redirection target");
      continue;
    }
    if (REDIRECT_READ.has(op)) fileEffect(ctx, "read", w, "a `<` redirection");
    else if (op === "<>") {
      fileEffect(ctx, "read", w, "a `<>` redirection");
      fileEffect(ctx, "write", w, "a `<>` redirection");
    } else if (REDIRECT_WRITE.has(op)) {
      if (!(w.t === "text" && w.s === "/dev/null")) fileEffect(ctx, "write", w, "a `>` redirection");
    } else flag(ctx, `the operator \`${op}\``);
  }
  finish();
  if (stack.length > 0) flag(ctx, "an unbalanced `(`");
  return { effects: ctx.effects, ask: ctx.ask };
}
