/**
 * IAM Access Analyzer / IAM "last accessed" exports: `aws iam get-service-last-accessed-details`
 * output (`ServicesLastAccessed[]`, with `TrackedActionsLastAccessed[]` at action granularity).
 */
import { importError, isRecord } from "./errors.js";

export interface LastAccessed {
  readonly service: string;
  /** When the service was last used; undefined when never within the tracking period. */
  readonly lastAccessed?: string;
  readonly actions: readonly { readonly action: string; readonly lastAccessed?: string }[];
}

export function importLastAccessed(json: unknown, where: string): LastAccessed[] {
  if (!isRecord(json) || !Array.isArray(json.ServicesLastAccessed)) {
    throw importError(
      "ERR_AWS_IMPORT_FORMAT",
      where,
      "not `get-service-last-accessed-details` output (ServicesLastAccessed)",
    );
  }
  return json.ServicesLastAccessed.map((s, i) => {
    if (!isRecord(s) || typeof s.ServiceNamespace !== "string") {
      throw importError(
        "ERR_AWS_IMPORT_FORMAT",
        where,
        `ServicesLastAccessed[${i}]: no \`ServiceNamespace\``,
      );
    }
    const service = s.ServiceNamespace;
    const tracked = Array.isArray(s.TrackedActionsLastAccessed) ? s.TrackedActionsLastAccessed : [];
    return {
      service,
      ...(typeof s.LastAuthenticated === "string" ? { lastAccessed: s.LastAuthenticated } : {}),
      actions: tracked.filter(isRecord).map((a) => ({
        action: `${service}:${String(a.ActionName)}`,
        ...(typeof a.LastAccessedTime === "string" ? { lastAccessed: a.LastAccessedTime } : {}),
      })),
    };
  });
}
