/**
 * The Kubernetes issuer's configuration, checked at start: the API server URL, the broker's own
 * token (a file or an environment variable, never `writ.yaml`), and the agent → ServiceAccount map.
 */
import { readFileSync } from "node:fs";
import { q, WritError } from "../../core/index.js";
import { type DownstreamOutcome, refused } from "../refusal.js";
import { ERR_DOWNSTREAM_CONFIG, type KubernetesDownstreamConfig } from "../types.js";
import { DNS_LABEL, DNS_SUBDOMAIN } from "./names.js";

export function configError(message: string): WritError {
  return new WritError(ERR_DOWNSTREAM_CONFIG, `downstream.kubernetes: ${message}`);
}

/** Reads the broker's bearer token; throws ERR_DOWNSTREAM_CONFIG when missing or empty. */
export function readToken(
  cfg: KubernetesDownstreamConfig,
  env: Readonly<Record<string, string | undefined>>,
): string {
  let value: string | undefined;
  if ("file" in cfg.token) {
    try {
      value = readFileSync(cfg.token.file, "utf8");
    } catch (e) {
      throw configError(
        `token file ${q(cfg.token.file)} cannot be read: ${(e as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  } else {
    value = env[cfg.token.env];
    if (value === undefined) throw configError(`token: environment variable ${q(cfg.token.env)} is not set`);
  }
  const token = value.trim();
  if (token === "") throw configError(`token from ${"file" in cfg.token ? "file" : "environment"} is empty`);
  if ([...token].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw configError("token holds whitespace or control characters");
  }
  return token;
}

export function checkServer(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw configError(`server ${q(server)} is not a URL`);
  }
  if (url.protocol !== "https:") throw configError(`server ${q(server)}: expected an https URL`);
  // a path is allowed (API servers behind a proxy prefix), credentials, query and fragment are not
  if (url.username || url.password || url.search || url.hash) {
    throw configError(`server ${q(server)}: no credentials, query or fragment in the URL`);
  }
  return url;
}

/**
 * The agent's ServiceAccount: `namespace/name` with `{agent}` replaced, checked as Kubernetes names;
 * refused when none is mapped or the mapping does not make one.
 */
export function serviceAccountFor(
  cfg: KubernetesDownstreamConfig,
  agent: string,
): DownstreamOutcome<{ namespace: string; name: string }> {
  const template = cfg.serviceAccounts.get(agent) ?? cfg.serviceAccounts.get("*");
  if (template === undefined) {
    return refused(
      "downstream_not_configured",
      `no ServiceAccount is mapped for agent ${q(agent)} (downstream.kubernetes.serviceAccounts)`,
    );
  }
  const text = template.replaceAll("{agent}", agent);
  const [namespace, name, ...rest] = text.split("/");
  if (rest.length > 0 || !namespace || !name || !DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) {
    return refused(
      "downstream_not_configured",
      `ServiceAccount ${q(text)} for agent ${q(agent)} is not \`namespace/name\` with valid Kubernetes names`,
    );
  }
  return { ok: true, value: { namespace, name } };
}
