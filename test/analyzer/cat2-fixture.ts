/**
 * The category-2 tests' cluster: ServiceAccount, Role (get and list on pods, secrets, configmaps),
 * RoleBinding and Deployment `ops/bot`; and a Kubernetes audit event by a ServiceAccount of `ops`.
 */
export const OPS_BOT_MANIFESTS = `apiVersion: v1
kind: ServiceAccount
metadata: {name: bot, namespace: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: bot, namespace: ops}
rules:
  - apiGroups: [""]
    resources: [pods, secrets, configmaps]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bot, namespace: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: bot}
subjects: [{kind: ServiceAccount, name: bot, namespace: ops}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: bot, namespace: ops}
spec:
  template:
    spec:
      serviceAccountName: bot
      containers: [{name: app, image: app}]
`;

/** One allowed request of `system:serviceaccount:ops:<sa>` on `ops/<name>`, as an audit log line. */
export function auditEvent(
  id: string,
  at: number,
  verb: string,
  resource: string,
  name: string,
  sa = "bot",
): string {
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: id,
    stage: "ResponseComplete",
    verb,
    user: { username: `system:serviceaccount:ops:${sa}` },
    objectRef: { resource, namespace: "ops", name, apiVersion: "v1" },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: new Date(at).toISOString(),
  });
}
