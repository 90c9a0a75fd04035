/**
 * What a GitHub job's steps need from its token, without activity data: a table of well-known
 * actions and `run:` commands. Unknown actions add nothing (and lower the confidence).
 */
import { GITHUB_PERMISSIONS } from "../../../core/index.js";

/** The names the workflow importer accepts: src/core's set itself (one list, see ./scopes.ts). */
export const GITHUB_PERMISSION_NAMES: ReadonlySet<string> = GITHUB_PERMISSIONS;

interface Need {
  readonly scope: string;
  readonly level: "read" | "write";
}

const ACTIONS: readonly [RegExp, readonly Need[], ((w: Record<string, unknown>) => boolean)?][] = [
  [/^actions\/checkout$/, [{ scope: "contents", level: "read" }]],
  [
    /^github\/codeql-action\/(upload-sarif|analyze)$/,
    [
      { scope: "security_events", level: "write" },
      { scope: "actions", level: "read" },
      { scope: "contents", level: "read" },
    ],
  ],
  [/^github\/codeql-action\/init$/, [{ scope: "contents", level: "read" }]],
  [
    /^actions\/deploy-pages$/,
    [
      { scope: "pages", level: "write" },
      { scope: "id_token", level: "write" },
    ],
  ],
  [
    /^actions\/attest-build-provenance$/,
    [
      { scope: "attestations", level: "write" },
      { scope: "id_token", level: "write" },
    ],
  ],
  [
    /^docker\/login-action$/,
    [{ scope: "packages", level: "write" }],
    (w) => String(w.registry ?? "").includes("ghcr.io"),
  ],
  [/^(softprops\/action-gh-release|ncipollo\/release-action)$/, [{ scope: "contents", level: "write" }]],
  [
    /^peter-evans\/create-pull-request$/,
    [
      { scope: "contents", level: "write" },
      { scope: "pull_requests", level: "write" },
    ],
  ],
  [
    /^actions\/labeler$/,
    [
      { scope: "pull_requests", level: "write" },
      { scope: "contents", level: "read" },
    ],
  ],
  [
    /^actions\/stale$/,
    [
      { scope: "issues", level: "write" },
      { scope: "pull_requests", level: "write" },
    ],
  ],
  [
    /^aws-actions\/configure-aws-credentials$/,
    [{ scope: "id_token", level: "write" }],
    (w) => w["role-to-assume"] !== undefined,
  ],
  [
    /^google-github-actions\/auth$/,
    [{ scope: "id_token", level: "write" }],
    (w) => w.workload_identity_provider !== undefined,
  ],
  [/^azure\/login$/, [{ scope: "id_token", level: "write" }]],
  [/^actions\/(upload-artifact|download-artifact|cache|setup-[a-z]+|upload-pages-artifact)$/, []],
];

const RUNS: readonly [RegExp, Need][] = [
  [/\bgh\s+pr\s+(create|merge|edit|comment|review|close)/, { scope: "pull_requests", level: "write" }],
  [/\bgh\s+pr\s+(view|list|diff|checks)/, { scope: "pull_requests", level: "read" }],
  [/\bgh\s+issue\s+(create|edit|comment|close)/, { scope: "issues", level: "write" }],
  [/\bgh\s+release\s+(create|upload|edit|delete)/, { scope: "contents", level: "write" }],
  [/\bgit\s+push\b/, { scope: "contents", level: "write" }],
  [/\bdocker\s+push\s+ghcr\.io/, { scope: "packages", level: "write" }],
];

export interface StepNeed {
  readonly scope: string;
  readonly level: "read" | "write";
  readonly reason: string;
  readonly line?: number | undefined;
}

/** Needs of a job's steps; `known` is false when some step is an action writ cannot judge. */
export function stepNeeds(
  steps: readonly { uses?: unknown; run?: unknown; with?: unknown; line?: number }[],
): {
  needs: StepNeed[];
  unknown: string[];
} {
  const needs: StepNeed[] = [];
  const unknown: string[] = [];
  for (const s of steps) {
    if (typeof s.uses === "string") {
      const name = s.uses.split("@")[0]!.replace(/^\.\//, "./");
      const w = (typeof s.with === "object" && s.with !== null ? s.with : {}) as Record<string, unknown>;
      const hit = ACTIONS.find(([re, , when]) => re.test(name) && (!when || when(w)));
      if (hit)
        for (const n of hit[1])
          needs.push({ ...n, reason: `step ${s.uses} needs ${n.scope}: ${n.level}`, line: s.line });
      else if (!ACTIONS.some(([re]) => re.test(name))) unknown.push(s.uses);
    }
    if (typeof s.run === "string") {
      for (const [re, n] of RUNS)
        if (re.test(s.run))
          needs.push({
            ...n,
            reason: `\`run\` ${re.source
              .replace(/\\[bs]/g, " ")
              .replace(/\\/g, "")
              .trim()} needs ${n.scope}: ${n.level}`,
            line: s.line,
          });
    }
  }
  return { needs, unknown };
}
