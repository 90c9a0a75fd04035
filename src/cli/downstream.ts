/**
 * `writ downstream aws policy`: the IAM a user must set up for writ's AWS issuer, from the
 * `downstream.<env>.aws` section of writ.yaml — the broker's own least-privilege policy and each
 * role's trust policy (role-session mode), or the OIDC trust policy (web-identity mode).
 *
 * It reads only that section of the YAML (mode and roles), so it works before the rest of the
 * configuration is complete; `writ check` validates the whole file.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parse } from "yaml";
import { q } from "../core/index.js";
import { awsSetup } from "../downstream/aws/setup.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

/** As common.ts's, without loading the whole app to read one section. */
const DEFAULT_CONFIG = "writ.yaml";

interface PolicyOptions {
  readonly config: string;
  readonly env?: string;
  readonly broker?: string;
  readonly issuer?: string;
  readonly audience?: string;
  readonly agent?: string[];
  readonly json: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The `downstream.<env>.aws` section's mode and roles, with coded errors naming where. */
export function readAwsSection(
  file: string,
  env: string | undefined,
): {
  env: string;
  mode: "role-session" | "web-identity";
  roles: Map<string, string>;
  audience: string | undefined;
} {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliFailure(
      "ERR_USAGE",
      `${file}: ${code ?? (err instanceof Error ? err.message : String(err))}`,
    );
  }
  const ds = isRecord(doc) ? doc.downstream : undefined;
  if (!isRecord(ds))
    throw new CliFailure("ERR_DOWNSTREAM_CONFIG", `${file}: no \`downstream\` section`, EXIT.no);
  const withAws = Object.keys(ds).filter(
    (e) => isRecord(ds[e]) && isRecord((ds[e] as Record<string, unknown>).aws),
  );
  const chosen = env ?? (withAws.length === 1 ? withAws[0] : undefined);
  if (chosen === undefined) {
    throw new CliFailure(
      "ERR_USAGE",
      withAws.length === 0
        ? `${file}: no environment under \`downstream\` configures \`aws\``
        : `${file}: several environments configure aws (${withAws.join(", ")}): choose one with --env`,
    );
  }
  const section = isRecord(ds[chosen]) ? (ds[chosen] as Record<string, unknown>).aws : undefined;
  if (!isRecord(section)) {
    throw new CliFailure(
      "ERR_DOWNSTREAM_CONFIG",
      `${file}: downstream.${chosen}.aws: not configured`,
      EXIT.no,
    );
  }
  const mode = section.mode ?? "role-session";
  if (mode !== "role-session" && mode !== "web-identity") {
    throw new CliFailure(
      "ERR_DOWNSTREAM_CONFIG",
      `${file}: downstream.${chosen}.aws.mode: ${q(mode)} is not \`role-session\` or \`web-identity\``,
      EXIT.no,
    );
  }
  if (!isRecord(section.roles) || Object.keys(section.roles).length === 0) {
    throw new CliFailure(
      "ERR_DOWNSTREAM_CONFIG",
      `${file}: downstream.${chosen}.aws.roles: expected a map of playbook (or \`*\`) to role ARN`,
      EXIT.no,
    );
  }
  const roles = new Map<string, string>();
  for (const [pb, arn] of Object.entries(section.roles)) {
    if (typeof arn !== "string" || !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(arn)) {
      throw new CliFailure(
        "ERR_DOWNSTREAM_CONFIG",
        `${file}: downstream.${chosen}.aws.roles.${pb}: ${q(arn)} is not an IAM role ARN`,
        EXIT.no,
      );
    }
    roles.set(pb, arn);
  }
  return {
    env: chosen,
    mode,
    roles,
    audience: typeof section.audience === "string" ? section.audience : undefined,
  };
}

export function registerDownstream(program: Command, io: Io, setExit: (code: number) => void): void {
  const ds = program.command("downstream").description("downstream credentials: the setup each system needs");
  const aws = ds.command("aws").description("AWS: role sessions or web identity");
  aws
    .command("policy")
    .description("print the broker's least-privilege IAM policy and each role's trust policy")
    .option("--config <file>", "writ.yaml", DEFAULT_CONFIG)
    .option("--env <environment>", "the environment whose `downstream.<env>.aws` to read")
    .option("--broker <arn>", "the principal the broker's AWS keys belong to (role-session)")
    .option("--issuer <url>", "writ's environment issuer URL (web-identity)")
    .option(
      "--audience <aud>",
      "the web-identity tokens' audience (default: `audience` in writ.yaml, else sts.amazonaws.com)",
    )
    .option("--agent <id...>", "web-identity: the agents (the tokens' `sub`) the roles trust")
    .option("--json", "print JSON", false)
    .action((opts: PolicyOptions) => {
      const section = readAwsSection(opts.config, opts.env);
      const setup = awsSetup({
        mode: section.mode,
        roles: section.roles,
        brokerPrincipal: opts.broker,
        issuer: opts.issuer,
        audience: opts.audience ?? section.audience,
        agents: opts.agent,
      });
      emit(io, opts.json, { environment: section.env, ...setup }, () => {
        const lines: string[] = [`# AWS setup for environment ${section.env} (${setup.mode})`, ""];
        if (setup.brokerPolicy) {
          lines.push("## The broker's own policy", JSON.stringify(setup.brokerPolicy, null, 2), "");
        } else
          lines.push("## The broker's own policy", "none: in web-identity mode writ holds no AWS keys", "");
        for (const [role, trust] of Object.entries(setup.trustPolicies)) {
          lines.push(`## Trust policy of ${role}`, JSON.stringify(trust, null, 2), "");
        }
        lines.push("## Steps", ...setup.steps.map((s) => `- ${s}`));
        return lines.join("\n");
      });
      setExit(EXIT.ok);
    });
}
