/** AWS importers: account authorization details, policy folders and organization trees, resource policies, CloudTrail, last-accessed exports. */
export {
  type AuthorizationDetails,
  findPrincipal,
  type IamGroup,
  type IamRole,
  type IamUser,
  importAuthorizationDetails,
  type ManagedPolicy,
  type PrincipalPolicies,
  policiesFor,
} from "./authz-details.js";
export {
  lineRecords,
  normaliseRecord,
  readTrail,
  readTrailFile,
  readTrailLines,
  recordsOf,
  serviceOf,
  type TrailEvent,
} from "./cloudtrail.js";
export { AwsImportError, parseJson } from "./errors.js";
export { loadOrganization, loadPolicyFolder } from "./folders.js";
export { importLastAccessed, type LastAccessed } from "./last-accessed.js";
export { type ImportedResourcePolicy, importResourcePolicy } from "./resource-policy.js";
