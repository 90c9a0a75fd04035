/**
 * Policies from folders (documented in docs/aws.md):
 *
 * A principal's policy folder (`writ aws simulate --policies DIR`):
 *   identity/*.json   identity-based policies (inline or managed), one document a file
 *   boundary.json     the permissions boundary
 *   session/*.json    session policies
 *   resource.json     the resource-based policy (a document or a service's get-*-policy output)
 *   organization/     the organization tree, below
 *
 * An organization tree:
 *   organization.json           {"managementAccountId": "…", "policyTypes": ["SCP", "RCP"]}
 *   r-xxxx/                     the root; every node may hold scps/*.json and rcps/*.json
 *     ou-xxxx/                  organizational units, nested as in the organization
 *       123456789012/           member accounts (12-digit folder names)
 * With a policy type enabled every node has that list (an empty folder means nothing attached,
 * which denies everything at that level — AWS never lets the last policy be detached).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Organization, OrgNode, Policy, PolicyKind, PolicySet } from "../evaluator/index.js";
import { parsePolicy } from "../evaluator/index.js";
import { importError, isRecord, parseJson } from "./errors.js";
import { importResourcePolicy } from "./resource-policy.js";

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw importError("ERR_AWS_IMPORT_READ", path, (err as NodeJS.ErrnoException).code ?? "unreadable");
  }
  return parseJson(text, path);
}

function jsonFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => join(dir, f));
}

function policyFile(kind: PolicyKind, path: string): Policy {
  return parsePolicy(kind, path, readJson(path));
}

export function loadOrganization(dir: string): Organization {
  const meta = readJson(join(dir, "organization.json"));
  if (
    !isRecord(meta) ||
    typeof meta.managementAccountId !== "string" ||
    !/^\d{12}$/.test(meta.managementAccountId)
  ) {
    throw importError(
      "ERR_AWS_IMPORT_FORMAT",
      join(dir, "organization.json"),
      "needs `managementAccountId` (12 digits) and `policyTypes`",
    );
  }
  const types = Array.isArray(meta.policyTypes) ? meta.policyTypes : [];
  for (const t of types) {
    if (t !== "SCP" && t !== "RCP") {
      throw importError(
        "ERR_AWS_IMPORT_FORMAT",
        join(dir, "organization.json"),
        `unknown policy type \`${String(t)}\``,
      );
    }
  }
  const scp = types.includes("SCP");
  const rcp = types.includes("RCP");
  const nodes: OrgNode[] = [];
  const walk = (path: string, id: string, parent: string | undefined) => {
    nodes.push({
      id,
      ...(parent ? { parent } : {}),
      ...(scp ? { scps: jsonFiles(join(path, "scps")).map((f) => policyFile("scp", f)) } : {}),
      ...(rcp ? { rcps: jsonFiles(join(path, "rcps")).map((f) => policyFile("rcp", f)) } : {}),
    });
    for (const child of readdirSync(path).sort()) {
      const full = join(path, child);
      if (!statSync(full).isDirectory() || child === "scps" || child === "rcps") continue;
      if (!/^(ou-[a-z0-9-]+|\d{12})$/.test(child)) {
        throw importError(
          "ERR_AWS_IMPORT_FORMAT",
          full,
          "an organization folder must be `ou-…` or a 12-digit account",
        );
      }
      if (/^\d{12}$/.test(id))
        throw importError("ERR_AWS_IMPORT_FORMAT", full, "an account cannot contain nodes");
      walk(full, child, id);
    }
  };
  const roots = readdirSync(dir).filter(
    (f) => /^r-[a-z0-9]+$/.test(f) && statSync(join(dir, f)).isDirectory(),
  );
  if (roots.length !== 1) {
    throw importError(
      "ERR_AWS_IMPORT_FORMAT",
      dir,
      `expected one root folder \`r-…\`, found ${roots.length}`,
    );
  }
  walk(join(dir, roots[0]!), roots[0]!, undefined);
  return { managementAccountId: meta.managementAccountId, nodes };
}

export function loadPolicyFolder(dir: string): PolicySet {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw importError("ERR_AWS_IMPORT_READ", dir, "not a folder");
  }
  const boundaryPath = join(dir, "boundary.json");
  const resourcePath = join(dir, "resource.json");
  const sessions = jsonFiles(join(dir, "session")).map((f) => policyFile("session", f));
  return {
    identity: jsonFiles(join(dir, "identity")).map((f) => policyFile("identity", f)),
    ...(existsSync(boundaryPath) ? { boundary: policyFile("boundary", boundaryPath) } : {}),
    ...(sessions.length ? { session: sessions } : {}),
    ...(existsSync(resourcePath)
      ? { resource: importResourcePolicy(readJson(resourcePath), resourcePath).policy }
      : {}),
    ...(existsSync(join(dir, "organization"))
      ? { organization: loadOrganization(join(dir, "organization")) }
      : {}),
  };
}
