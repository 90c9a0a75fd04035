/**
 * Calls that reach paths writ does not list one by one, decided on what they can reveal: a file
 * pattern (Claude Code's `Glob`, Gemini CLI's `glob`) is judged on every path it matches, not only
 * on its folder; a recursive reader over a folder past the 2,000-entry walk is judged on the
 * writ.yaml's denies over the whole folder (core/region.ts): denied when a denied path in it
 * exists, `ask` when a deny may reach into it or a link may lead out, never `allow` by default.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicy } from "../../src/app.js";
import { regionView } from "../../src/core/index.js";
import { patternGlob } from "../../src/hook/derive.js";
import { type HookEngine, type HookKind, parseHookInput } from "../../src/hook/index.js";
import type { Store } from "../../src/store/index.js";
import { claude, gemini, judgingEngine, makeProject, type Project } from "./fixture.js";

let p: Project;
let store: Store;
let engine: HookEngine;
let big: string;
const ID = { agent: "coder", environment: "dev" };

beforeAll(async () => {
  p = await makeProject();
  // a folder past the walk's bound: 2,100 notes in 21 folders
  big = join(p.proj, "big");
  for (let d = 0; d < 21; d++) {
    const dir = join(big, `d${d}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(Array.from({ length: 100 }, (_, i) => writeFile(join(dir, `n${i}.txt`), "x\n")));
  }
  ({ store, engine } = await judgingEngine(p));
}, 120_000);

afterAll(async () => {
  await store?.close();
});

const judge = (kind: HookKind, raw: Record<string, unknown>) =>
  engine.judge(ID, parseHookInput(kind, JSON.stringify(raw)));
const glob = (input: Record<string, unknown>, cwd = p.proj) =>
  judge("claude-code", claude("PreToolUse", "Glob", input, cwd));
const bash = (command: string, cwd = p.proj) =>
  judge("claude-code", claude("PreToolUse", "Bash", { command }, cwd));

describe("Glob: decided on the paths its pattern matches", () => {
  it("a pattern matching a denied file is denied, though its folder is allowed", async () => {
    for (const pattern of [
      "**/*.pem",
      "secret/*",
      "*/key.pem",
      "s?cret/**",
      "**/key.{pem,key}",
      "secret/key.pem",
    ]) {
      const v = await glob({ pattern });
      expect(v.decision, `${pattern}: ${v.reason}`).toBe("deny");
      expect(v.code).toBe("explicit_deny");
    }
  });

  it("Gemini CLI's glob ignores case: **/*.PEM reaches key.pem", async () => {
    const v = await judge("gemini-cli", gemini("BeforeTool", "glob", { pattern: "**/*.PEM" }, p.proj));
    expect(v.decision, v.reason).toBe("deny");
  });

  it("a pattern that reaches no denied file is allowed; one that leaves its folder is an ask", async () => {
    expect((await glob({ pattern: "**/*.ts" })).decision).toBe("allow");
    expect((await glob({ pattern: "*.md", path: p.proj })).decision).toBe("allow");
    expect((await glob({ pattern: "../secret/*" }, p.src)).decision).toBe("ask");
  });

  it("past the walk: denied when a denied path it can match exists, ask when a deny may reach, allow when none can", async () => {
    // `**/*` over the project reaches the existing secret/ folder: denied without listing it
    expect((await glob({ pattern: "**/*" })).decision).toBe("deny");
    // the notes only: `secret/*` could hold a .txt, no literal denied path exists there → ask
    const notes = await glob({ pattern: "**/*.txt" });
    expect(notes.decision, notes.reason).toBe("ask");
    expect(notes.reason).toContain("may be denied");
    // below big/ no deny can reach, the grant holds it all, and Glob lists names: allowed
    const inside = await glob({ pattern: "big/**/*.txt" });
    expect(inside.decision, inside.reason).toBe("allow");
  });
});

describe("recursive readers over a folder past 2,000 entries", () => {
  it("grep -r over the project, where the denied secret/ exists, is denied without walking it", async () => {
    const v = await bash("grep -rn KEY .");
    expect(v.decision, v.reason).toBe("deny");
    expect(v.code).toBe("explicit_deny");
    expect(v.reason).toContain(join(p.proj, "secret"));
  });

  it("grep -r or tar of a large folder no deny reaches is an ask (a link below may lead out)", async () => {
    for (const c of ["grep -rn KEY big", "tar cf big.tar big"]) {
      const v = await bash(c);
      expect(v.decision, `${c}: ${v.reason}`).toBe("ask");
      expect(v.reason).toContain("more than 2000 entries");
    }
  });
});

describe("git: decided on the paths it names, not only on the repository", () => {
  it("REV:path, pathspecs, blame's file, -L and --output are decided on their paths; no path, on the repository", async () => {
    const denied: [string, string][] = [
      ["git show HEAD:secret/key.pem", p.src],
      ["git cat-file -p HEAD~2:secret/key.pem", p.src],
      ["git show HEAD:../secret/key.pem", p.src],
      ["git diff -- ../secret/key.pem", p.src],
      ["git log -p -- secret", p.proj],
      ["git log -p -- 'secret/*'", p.proj],
      ["git blame secret/key.pem", p.proj],
      ["git log -L 1,3:secret/key.pem", p.proj],
      ["git diff --output=secret/out.txt", p.proj],
      ["git checkout HEAD -- secret/key.pem", p.proj],
      // no path: the whole repository, which holds secret/
      ["git grep secret", p.proj],
      ["git log --stat -5", p.proj],
      // the names it lists include the denied folder
      ["git status", p.proj],
    ];
    for (const [c, cwd] of denied) {
      const v = await bash(c, cwd);
      expect(v.decision, `${c}: ${v.reason}`).toBe("deny");
    }
  });

  it("the same commands on allowed paths are allowed; a wildcard pathspec a deny may reach is an ask", async () => {
    const allowed: [string, string][] = [
      ["git show HEAD:src/a.ts", p.src],
      ["git show HEAD:./a.ts", p.src],
      ["git diff HEAD~1 -- a.ts", p.src],
      ["git log -p -- src", p.proj],
      ["git grep secret -- src", p.proj],
      ["git log --oneline -5 -- src", p.proj],
      // commits and refs only: no path, no content
      ["git log --oneline -5", p.proj],
      ["git log --graph --decorate --all", p.proj],
      ["git shortlog -sn", p.proj],
    ];
    for (const [c, cwd] of allowed) {
      const v = await bash(c, cwd);
      expect(v.decision, `${c}: ${v.reason}`).toBe("allow");
    }
    for (const c of ["git log -p -- '*.pem'", "git show :/fix", "git log -- ':(glob)**/*.pem'"]) {
      const v = await bash(c);
      expect(v.decision, `${c}: ${v.reason}`).toBe("ask");
    }
  });
});

describe("the region view (core/region.ts)", () => {
  it("names the denies that meet a region, whole or literal, and whether a grant holds it", async () => {
    const { policy } = await loadPolicy(p.config);
    const req = (region: string) => ({
      agent: "coder",
      action: "agent:claude-code:Read",
      region,
      environment: "dev",
      now: new Date(),
    });
    const all = regionView(policy!.config, [], req(`${p.proj}/*`));
    const secret = all.denies.filter((d) => d.alternative.includes("secret"));
    expect(secret.map((d) => [d.alternative, d.literal, d.whole])).toEqual([
      [join(p.proj, "secret"), true, false],
      [`${p.proj}/secret|${p.proj}/secret/*`, false, false],
    ]);
    expect(all.granted).toBe(true);
    const inside = regionView(policy!.config, [], req(`${p.proj}/secret/*`));
    expect(inside.denies.some((d) => d.whole)).toBe(true);
    expect(regionView(policy!.config, [], req(`${p.proj}/big/*`))).toEqual({ denies: [], granted: true });
    expect(regionView(policy!.config, [], req("/etc/*")).granted).toBe(false);
    expect(regionView(policy!.config, [], { ...req("/etc/*"), agent: "nobody" })).toEqual({
      denies: [],
      granted: false,
    });
  });

  it("turns file patterns into globs that hold every match", () => {
    expect(patternGlob("**/*.ts", false)).toBe("**.ts");
    expect(patternGlob("src/**/a?.[jt]s", false)).toBe("src/*a?.?s");
    expect(patternGlob("a/{b,c}/d", false)).toBe("a/*");
    expect(patternGlob("*.ENV", true)).toBe("*.???");
  });
});
