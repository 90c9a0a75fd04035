/**
 * Collection requests against declared work limited to named objects. A Kubernetes list or watch
 * names no object (`ns/*`, or `*` for a cluster-scoped resource), so a declaration of named
 * objects (`k8s:core/configmaps:get|list|watch` on `ops/app-config`) can never cover it by
 * matching alone. The rule:
 *   - a list/watch with a `metadata.name` field selector is a request for that object: the API
 *     server puts the name in the audit event's `objectRef.name`, so it arrives as `ns/name` and is
 *     matched as any named request (nothing to do here);
 *   - an unselected list/watch of a resource in a namespace is covered when the declaration grants
 *     that same verb (list, or watch) on named objects of that resource in that namespace (for a
 *     cluster-scoped resource: on named objects of it). The owner declared the verb; clients such
 *     as informers list the namespace and filter on their side. What it gives an attacker: the
 *     other objects of that resource in that namespace, which the declaration already let it name
 *     one by one only if it knew them;
 *   - except Secrets: an unselected list of Secrets returns every Secret's data in the namespace,
 *     the exfiltration category 2 exists to catch, so a declaration of named Secrets covers only
 *     field-selected lists and watches. A `get` alone never covers a list or watch.
 */
import { globMatches, parseGlob, parseRequestAction, type Rule, ruleMatches } from "../core/index.js";
import { CLUSTER_SCOPED } from "./providers/k8s/index.js";

const COLLECTION = /^k8s:(.+):(list|watch)$/;
/** Resources whose list returns credentials: never covered by a declaration of named objects. */
const CREDENTIALS = new Set(["core/secrets"]);

/**
 * Does a declared grant (its rule and text) cover the unselected list/watch `action` on
 * `resource` (`ns/*` or `*`) by naming objects of that resource there?
 */
export function coversCollection(
  declared: { readonly rule: Rule; readonly resource: string },
  action: string,
  resource: string,
): boolean {
  const m = COLLECTION.exec(action);
  if (!m || CREDENTIALS.has(m[1]!)) return false;
  const namespaced = resource.endsWith("/*");
  if (!namespaced && resource !== "*") return false;
  const d = declared.resource;
  const slash = d.indexOf("/");
  let probe: string;
  if (namespaced) {
    // Named objects in the event's namespace: `ns/name` with a name that is not all-wildcard.
    if (slash < 0) return false;
    const ns = resource.slice(0, -2);
    const name = d.slice(slash + 1);
    if (name === "" || name === "*") return false;
    try {
      if (!globMatches(parseGlob(d.slice(0, slash)), ns)) return false;
    } catch {
      return false;
    }
    probe = `${ns}/${name.replace(/\*/g, "x")}`;
  } else {
    // A cluster-scoped resource: named objects carry no slash. (A namespaced resource's `*` is a
    // list across every namespace: never covered by named objects.)
    if (!CLUSTER_SCOPED.has(m[1]!.split("/")[1] ?? "")) return false;
    if (slash >= 0 || d === "*" || d === "") return false;
    probe = d.replace(/\*/g, "x");
  }
  // The same verb on one of the declared objects: the declaration's action must cover it.
  try {
    return ruleMatches(declared.rule, parseRequestAction(action), probe, "cover");
  } catch {
    return false;
  }
}
