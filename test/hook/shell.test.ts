/**
 * The shell reading on its own: what shell-quote would misread is caught by the raw scan, sed
 * scripts are proven safe or not, and the effects name the files, hosts and programs bash would
 * touch.
 */
import { describe, expect, it } from "vitest";
import { prepare, readShell, sedScriptIsSafe } from "../../src/hook/index.js";

const read = (c: string) => readShell(c, "/w", "/home/dev");
const paths = (c: string) =>
  read(c).effects.flatMap((e) => ("path" in e ? [`${e.kind} ${e.path} @${e.dirs.join(",")}`] : []));

describe("the raw scan", () => {
  it("turns newlines into separators, drops comments and heredoc bodies, joins continued lines", () => {
    expect(prepare("ls\ncat /s # cat /t").text).toBe("ls ; cat /s ");
    expect(prepare("cat <<'EOF' > out\n$(rm -rf /)\nEOF\nls").text).toBe("cat   > out ; ls");
    expect(prepare("cat <<'EOF'\n$(x)\nEOF").ask).toEqual([]);
    expect(prepare("cat <<EOF\n$(x)\nEOF").ask).toContain("command substitution inside a heredoc");
    expect(prepare("cat a\\\nb").text).toBe("cat ab");
  });
  it("flags what the words would hide", () => {
    for (const [c, why] of [
      ["echo `id`", "backticks"],
      ['echo "$(id)"', "`$(…)`"],
      ["cat {a,b}", "brace"],
      ["cat a[bc]", "bracket"],
      ["cat f#x", "`#` inside a word"],
      ["cat 'unterminated", "unterminated"],
      ["echo $'\\x41'", "ANSI-C"],
    ] as const) {
      expect(prepare(c).ask.join(" "), c).toContain(why);
    }
    expect(prepare("[ -f a ] && echo '[x]' \"{y}\"").ask).toEqual([]);
  });
  it("a descriptor before a redirection is not an operand", () => {
    expect(prepare("cmd 2>/dev/null 1>&2").text).toBe("cmd >/dev/null >&2");
    expect(paths("cat 2 >out")).toEqual(["write out @/w", "read 2 @/w"]);
  });
});

describe("sed scripts", () => {
  it("only printing, deleting and substituting in memory is safe", () => {
    for (const s of [
      "1,5p",
      "$p",
      "/re/d",
      "s/a/b/g",
      "s|a|b|2p",
      "1d;3q",
      "y/abc/xyz/",
      "/x/,/y/{p;}",
      "-n",
    ]) {
      expect(sedScriptIsSafe(s), s).toBe(s !== "-n");
    }
    for (const s of [
      "w /tmp/x",
      "1w out",
      "s/a/b/w out",
      "s/a/b/e",
      "e id",
      "r /etc/passwd",
      "1R f",
      "a\\text",
    ]) {
      expect(sedScriptIsSafe(s), s).toBe(false);
    }
  });
});

describe("effects", () => {
  it("cd keeps the old directory beside the new one; subshells restore it", () => {
    expect(paths("cd sub && cat f")).toEqual(["read f @/w,/w/sub"]);
    expect(paths("(cd /x; cat a); cat b")).toEqual(["read a @/w,/x", "read b @/w"]);
    expect(paths("cd; cat f")).toEqual(["read f @/w,/home/dev"]);
  });
  it("network tools name their hosts; data files are reads", () => {
    const r = read("curl -sS -X POST --data-binary @body.json https://api.example.com/v1 | jq .");
    expect(r.effects).toContainEqual({ kind: "host", host: "api.example.com" });
    expect(r.effects).toContainEqual({ kind: "read", path: "body.json", dirs: ["/w"] });
    expect(read("scp -r dir user@host.example:/tmp").effects).toContainEqual({
      kind: "host",
      host: "host.example",
    });
    expect(read("git fetch").effects).toContainEqual({ kind: "git-remote", remote: undefined, dirs: ["/w"] });
    expect(read("ssh -o ProxyCommand=x h").ask.join()).toContain("ssh -o");
  });
  it("harmless variables pass; variables where files go do not", () => {
    expect(read("echo $HOME ${USER:-x}").ask).toEqual([]);
    expect(read("cat $F").ask).toContain("a variable among the operands of `cat`");
    expect(read("ls > $OUT").ask).toContain("a variable where a `>` redirection names a file");
    expect(read("PATH=/tmp ls").ask.join()).toContain("PATH");
  });
});
