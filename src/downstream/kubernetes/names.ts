/**
 * Names and labels the Kubernetes issuer gives its objects, made from writ and agent ids so that
 * they are always valid Kubernetes names and label values.
 */
import { createHash } from "node:crypto";

const shortHash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 10);

/**
 * `writ-<id>` as a DNS-1123 label (the strictest of the names used: ≤ 63, `[a-z0-9-]`). When the
 * id had to change (upper case, `_`), a hash of the id keeps two writs from sharing a name.
 */
export function objectName(writId: string): string {
  const want = `writ-${writId}`;
  const base = want
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (base === want && base.length <= 63) return base;
  return `${base.slice(0, 52).replace(/-+$/, "")}-${shortHash(writId)}`;
}

const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value for an id: the id itself when valid, else a sanitised prefix and a hash. */
export function labelValue(id: string): string {
  if (LABEL_VALUE.test(id)) return id;
  const base = id
    .replace(/[^A-Za-z0-9_.-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "")
    .slice(0, 50)
    .replace(/[^A-Za-z0-9]+$/, "");
  return base ? `${base}-${shortHash(id)}` : `h-${shortHash(id)}`;
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The label naming the writ an object was made for (kill and removal select by it). */
export const LABEL_WRIT = "writ.dev/writ";
export const LABEL_AGENT = "writ.dev/agent";
/** Which writ environment made the object (for people and audit; kill does not select by it). */
export const LABEL_ENVIRONMENT = "writ.dev/environment";
