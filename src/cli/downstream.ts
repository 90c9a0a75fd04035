/**
 * `writ downstream aws policy`: the IAM a user must set up for writ's AWS issuer, from the
 * `downstream.<env>.aws` section of writ.yaml — the broker's own least-privilege policy and each
 * role's trust policy (role-session mode), or the OIDC trust policy (web-identity mode).
 *
 * writ.yaml is loaded as `writ serve` loads it (`requirePolicy`): what is printed is the setup of
 * exactly the configuration the server would run, and a file the server would refuse is refused
 * here with the same coded problems (file, line, column, path).
 */
import type { Command } from "commander";
import { awsSetup } from "../downstream/aws/setup.js";
import type { AwsDownstreamConfig, DownstreamConfig } from "../downstream/types.js";
import { DEFAULT_CONFIG, requirePolicy } from "./common.js";
import { CliFailure, EXIT, emit, type Io } from "./output.js";

interface PolicyOptions {
  readonly config: string;
  readonly env?: string;
  readonly broker?: string;
  readonly issuer?: string;
  readonly audience?: string;
  readonly agent?: string[];
  readonly json: boolean;
}

/** The environment whose AWS section to print: `--env`, else the only one that configures aws. */
export function awsSection(
  downstream: DownstreamConfig | undefined,
  file: string,
  env: string | undefined,
): { readonly env: string; readonly aws: AwsDownstreamConfig } {
  const withAws = [...(downstream?.environments ?? [])]
    .filter(([, e]) => e.aws !== undefined)
    .map(([n]) => n);
  const chosen = env ?? (withAws.length === 1 ? withAws[0] : undefined);
  if (chosen === undefined)
    throw new CliFailure(
      "ERR_USAGE",
      withAws.length === 0
        ? `${file}: no environment under \`downstream\` configures \`aws\``
        : `${file}: several environments configure aws (${withAws.join(", ")}): choose one with --env`,
    );
  const aws = downstream?.environments.get(chosen)?.aws;
  if (aws === undefined)
    throw new CliFailure(
      "ERR_DOWNSTREAM_CONFIG",
      `${file}: downstream.${chosen}.aws: not configured`,
      EXIT.no,
    );
  return { env: chosen, aws };
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
    .action(async (opts: PolicyOptions) => {
      const policy = await requirePolicy(opts.config, io, opts.json);
      const section = awsSection(policy.config.downstream, opts.config, opts.env);
      const setup = awsSetup({
        mode: section.aws.mode,
        roles: section.aws.roles,
        brokerPrincipal: opts.broker,
        issuer: opts.issuer,
        audience: opts.audience ?? section.aws.audience,
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
