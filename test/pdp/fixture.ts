/** A small writ.yaml for the decision point's tests, with guardrails given per test. */
import { type ConfigProblem, type LoadResult, loadConfigText } from "../../src/config/index.js";
import { type CompileResult, compileGuardrails } from "../../src/pdp/index.js";

export const FILE = "/virtual/writ.yaml";

export const BASE = `version: 1
environments:
  dev: {}
  prod:
    ticket:
      pattern: "^CHG-[0-9]+$"
    changeWindows:
      - days: mon-fri
        hours: "09:00-17:00"
        timezone: Europe/London
runnerClasses:
  data:
    ceiling:
      maxTtl: 1h
      allow:
        - action: "aws:s3:*"
          resource: "arn:aws:s3:::*"
        - action: "mcp:filesystem:read_text_file|write_file"
          resource: "*"
        - action: "github:contents:read|write"
          resource: "acme/*"
      deny:
        - action: "aws:iam:*"
agents:
  loader:
    owner: erin@acme.example
    purpose: Moves report files between buckets
    runnerClass: data
    environments: [dev, prod]
    baseline:
      - action: "aws:s3:Get*|ListBucket"
        resource: "arn:aws:s3:::*"
      - action: "aws:s3:PutObject|DeleteObject"
        resource: "arn:aws:s3:::*"
        standingWrite: the loader's job is writing reports
      - action: "mcp:filesystem:read_text_file"
        resource: "*"
      - action: "mcp:filesystem:write_file"
        resource: "*"
        standingWrite: writes its scratch files
      - action: "github:contents:write"
        resource: "acme/*"
        standingWrite: commits reports
    tools: ["filesystem:*"]
`;

/** writ.yaml with inline guardrails, each a block scalar. */
export function withGuardrails(...inline: string[]): string {
  if (inline.length === 0) return BASE;
  const items = inline.map((text) => `  - inline: |\n${text.replace(/^/gm, "      ")}\n`).join("");
  return `${BASE}guardrails:\n${items}`;
}

export interface Loaded {
  readonly load: LoadResult;
  readonly compiled: CompileResult;
  readonly problems: readonly ConfigProblem[];
}

export async function load(text: string, extra: { baseDir?: string } = {}): Promise<Loaded> {
  const result = await loadConfigText(text, { file: FILE, ...extra });
  if (!result.config) {
    throw new Error(`fixture does not load: ${result.problems.map((p) => p.message).join("; ")}`);
  }
  const compiled = compileGuardrails(result.config, {
    sources: result.guardrailSources,
    vocab: result.vocab,
  });
  return { load: result, compiled, problems: compiled.problems };
}
