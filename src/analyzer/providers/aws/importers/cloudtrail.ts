/**
 * CloudTrail events from the forms they come in: log files (`{"Records": [...]}`), arrays of
 * records, JSON lines (one record a line), `lookup-events` output (`{"Events": [{…,
 * "CloudTrailEvent": "<json>"}]}` or one such object a line), each optionally gzip-compressed.
 * Every event is normalised to the IAM action it exercised and the principal it is attributed to
 * (a role session is attributed to its role, as analysis aggregates per workload).
 */
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { createGunzip, gunzipSync } from "node:zlib";
import { importError, isRecord, parseJson } from "./errors.js";

export interface TrailEvent {
  readonly time: string;
  readonly eventSource: string;
  readonly eventName: string;
  /** The IAM action, `service:Action`. */
  readonly action: string;
  /** How the action was derived: straight from the event, or through a known renaming. */
  readonly actionFrom: "event" | "mapped";
  readonly identityType: string;
  /** The principal the event is attributed to: the user, the role (for a session), root, the service. */
  readonly principal: string;
  /** The ARN the call was made with (a session ARN for roles). */
  readonly callerArn?: string;
  readonly account?: string;
  readonly resources: readonly string[];
  readonly errorCode?: string;
  readonly sourceIp?: string;
  readonly region?: string;
  readonly readOnly?: boolean;
  readonly requestId?: string;
  readonly userAgent?: string;
  /** The role session the call was made with (`userIdentity.type` `AssumedRole`). */
  readonly session?: TrailSession;
  /** A successful `sts:AssumeRole` whose session tags name a writ (`writ:id`, `writ:agent`, `writ:playbook`). */
  readonly writIssue?: TrailWritIssue;
}

export interface TrailSession {
  /** `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`. */
  readonly arn: string;
  readonly accessKeyId?: string;
  /** `userIdentity.sessionContext.sourceIdentity`: set at AssumeRole, kept for the session's life. */
  readonly sourceIdentity?: string;
}

export interface TrailWritIssue {
  readonly writ: string;
  readonly agent: string;
  readonly playbook: string;
  readonly sponsor?: string;
  /** The session it made: `responseElements.assumedRoleUser.arn` and its access key id. */
  readonly sessionArn: string;
  readonly accessKeyId?: string;
  /** `requestParameters.sourceIdentity` (writ sets the agent id). */
  readonly sourceIdentity?: string;
  readonly roleArn?: string;
}

/** eventSource prefixes that are not the IAM service prefix. */
const SOURCE_TO_SERVICE: Record<string, string> = {
  monitoring: "cloudwatch",
  email: "ses",
  "runtime.sagemaker": "sagemaker",
  "runtime.lex": "lex",
  "bedrock-runtime": "bedrock",
  "bedrock-agent-runtime": "bedrock",
  "api.ecr": "ecr",
  tagging: "tag",
};

/** Event names whose IAM action has another name (the documented CloudTrail→IAM mismatches). */
const EVENT_TO_ACTION: Record<string, string> = {
  "s3:ListObjects": "s3:ListBucket",
  "s3:ListObjectsV2": "s3:ListBucket",
  "s3:ListObjectVersions": "s3:ListBucketVersions",
  "s3:HeadObject": "s3:GetObject",
  "s3:HeadBucket": "s3:ListBucket",
  "s3:ListBuckets": "s3:ListAllMyBuckets",
  "s3:CreateMultipartUpload": "s3:PutObject",
  "s3:UploadPart": "s3:PutObject",
  "s3:CompleteMultipartUpload": "s3:PutObject",
  "s3:CopyObject": "s3:PutObject",
};

export function serviceOf(eventSource: string): string {
  const prefix = eventSource.replace(/\.amazonaws\.com(\.cn)?$/, "");
  return SOURCE_TO_SERVICE[prefix] ?? prefix;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Resources a record names: its `resources` list, and ARNs derived from common request parameters. */
function resourcesOf(
  r: Record<string, unknown>,
  service: string,
  eventName: string,
  account: string | undefined,
): string[] {
  const out = new Set<string>();
  if (Array.isArray(r.resources)) {
    for (const x of r.resources) if (isRecord(x) && str(x.ARN)) out.add(x.ARN as string);
  }
  const p = isRecord(r.requestParameters) ? r.requestParameters : {};
  const partition = "aws";
  if (service === "s3" && str(p.bucketName)) {
    out.add(
      str(p.key) ? `arn:${partition}:s3:::${p.bucketName}/${p.key}` : `arn:${partition}:s3:::${p.bucketName}`,
    );
  }
  if (service === "iam" && account) {
    if (str(p.userName)) out.add(`arn:${partition}:iam::${account}:user/${p.userName}`);
    if (str(p.roleName)) out.add(`arn:${partition}:iam::${account}:role/${p.roleName}`);
    if (str(p.groupName)) out.add(`arn:${partition}:iam::${account}:group/${p.groupName}`);
  }
  // A policy ARN is the resource only of actions on the policy; elsewhere it is a parameter.
  if (service === "iam" && /Policy(Version)?$/.test(eventName) && !/^(Attach|Detach)/.test(eventName)) {
    const v = str(p.policyArn);
    if (v?.startsWith("arn:")) out.add(v);
  }
  for (const k of ["secretId", "keyId", "functionName", "topicArn"]) {
    const v = str(p[k]);
    if (v?.startsWith("arn:")) out.add(v);
  }
  return [...out];
}

/**
 * The writ an AssumeRole record's session tags name (`requestParameters.tags`: `[{key, value}]`),
 * or undefined: not AssumeRole, failed, or without all of `writ:id`, `writ:agent`, `writ:playbook`.
 */
function writIssueOf(r: Record<string, unknown>, name: string): TrailWritIssue | undefined {
  if (r.eventSource !== "sts.amazonaws.com" || name !== "AssumeRole" || str(r.errorCode)) return undefined;
  const p = isRecord(r.requestParameters) ? r.requestParameters : {};
  const out = isRecord(r.responseElements) ? r.responseElements : {};
  if (!Array.isArray(p.tags)) return undefined;
  // Session tag keys are case-insensitive to STS (`Writ:Id` is `writ:id`); two that fold together
  // with different values are no record STS would have accepted.
  const tags = new Map<string, string>();
  for (const t of p.tags) {
    if (!isRecord(t)) continue;
    const k = (str(t.key) ?? str(t.Key))?.toLowerCase();
    const v = typeof t.value === "string" ? t.value : typeof t.Value === "string" ? t.Value : undefined;
    if (k === undefined || v === undefined) continue;
    if (tags.has(k) && tags.get(k) !== v) return undefined;
    tags.set(k, v);
  }
  const writ = tags.get("writ:id");
  const agent = tags.get("writ:agent");
  const playbook = tags.get("writ:playbook");
  const user = isRecord(out.assumedRoleUser) ? out.assumedRoleUser : {};
  const creds = isRecord(out.credentials) ? out.credentials : {};
  const sessionArn = str(user.arn);
  if (!writ || !agent || !playbook || !sessionArn) return undefined;
  const sponsor = tags.get("writ:sponsor");
  const sourceIdentity = str(p.sourceIdentity) ?? str(out.sourceIdentity);
  return {
    writ,
    agent,
    playbook,
    ...(sponsor ? { sponsor } : {}),
    sessionArn,
    ...(str(creds.accessKeyId) ? { accessKeyId: creds.accessKeyId as string } : {}),
    ...(sourceIdentity ? { sourceIdentity } : {}),
    ...(str(p.roleArn) ? { roleArn: p.roleArn as string } : {}),
  };
}

/** One record → an event; `where` names the file and record for errors. */
export function normaliseRecord(raw: unknown, where: string): TrailEvent {
  let r = raw;
  // lookup-events form: the real record is a JSON string.
  if (isRecord(r) && typeof r.CloudTrailEvent === "string")
    r = parseJson(r.CloudTrailEvent, `${where}.CloudTrailEvent`);
  if (!isRecord(r) || typeof r.eventSource !== "string" || typeof r.eventName !== "string") {
    throw importError(
      "ERR_AWS_CLOUDTRAIL_RECORD",
      where,
      "not a CloudTrail record (needs eventSource and eventName)",
    );
  }
  const service = serviceOf(r.eventSource);
  // Lambda's event names carry the API version: UpdateFunctionCode20150331v2.
  const name = r.eventName.replace(/20\d{6}(v\d+)?$/, "");
  const direct = `${service}:${name}`;
  const mapped = EVENT_TO_ACTION[direct];
  const id = isRecord(r.userIdentity) ? r.userIdentity : {};
  const type = str(id.type) ?? "Unknown";
  const issuer =
    isRecord(id.sessionContext) && isRecord(id.sessionContext.sessionIssuer)
      ? id.sessionContext.sessionIssuer
      : {};
  const account = str(id.accountId) ?? str(r.recipientAccountId);
  let principal: string;
  if (type === "AssumedRole" && str(issuer.arn)) principal = issuer.arn as string;
  else if (type === "AWSService") principal = str(id.invokedBy) ?? "aws-service";
  else principal = str(id.arn) ?? (account ? `arn:aws:iam::${account}:root` : "unknown");
  const context = isRecord(id.sessionContext) ? id.sessionContext : {};
  const session: TrailSession | undefined =
    type === "AssumedRole" && str(id.arn)
      ? {
          arn: id.arn as string,
          ...(str(id.accessKeyId) ? { accessKeyId: id.accessKeyId as string } : {}),
          ...(str(context.sourceIdentity) ? { sourceIdentity: context.sourceIdentity as string } : {}),
        }
      : undefined;
  const writIssue = writIssueOf(r, name);
  return {
    time: str(r.eventTime) ?? "",
    eventSource: r.eventSource,
    eventName: r.eventName,
    action: mapped ?? direct,
    actionFrom: mapped && mapped !== direct ? "mapped" : "event",
    identityType: type,
    principal,
    ...(str(id.arn) ? { callerArn: id.arn as string } : {}),
    ...(account ? { account } : {}),
    resources: resourcesOf(r, service, name, account),
    ...(str(r.errorCode) ? { errorCode: r.errorCode as string } : {}),
    ...(str(r.sourceIPAddress) ? { sourceIp: r.sourceIPAddress as string } : {}),
    ...(str(r.awsRegion) ? { region: r.awsRegion as string } : {}),
    ...(typeof r.readOnly === "boolean" ? { readOnly: r.readOnly } : {}),
    ...(str(r.requestID) ? { requestId: r.requestID as string } : {}),
    ...(str(r.userAgent) ? { userAgent: r.userAgent as string } : {}),
    ...(session ? { session } : {}),
    ...(writIssue ? { writIssue } : {}),
  };
}

function isGzip(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Records of one line of JSON lines: a page of records, or one record. */
export function lineRecords(doc: unknown): unknown[] {
  if (isRecord(doc) && Array.isArray(doc.Records)) return doc.Records;
  if (isRecord(doc) && Array.isArray(doc.Events)) return doc.Events;
  return [doc];
}

/** Records of one parsed JSON document (a log file, an array, a lookup-events page). */
export function recordsOf(doc: unknown, where: string): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (isRecord(doc) && Array.isArray(doc.Records)) return doc.Records;
  if (isRecord(doc) && Array.isArray(doc.Events)) return doc.Events;
  if (isRecord(doc) && (typeof doc.eventName === "string" || typeof doc.CloudTrailEvent === "string"))
    return [doc];
  throw importError(
    "ERR_AWS_CLOUDTRAIL_FORMAT",
    where,
    "expected `Records`, `Events`, an array of records or JSON lines",
  );
}

/** Events of one file, streamed: JSON lines are read line by line, documents whole. */
export async function* readTrailFile(path: string): AsyncGenerator<TrailEvent> {
  const head = Buffer.alloc(2);
  const fd = await import("node:fs/promises").then((m) => m.open(path, "r"));
  try {
    await fd.read(head, 0, 2, 0);
  } finally {
    await fd.close();
  }
  const gz = isGzip(head);
  const jsonLines = /\.jsonl(\.gz)?$/.test(path) || /\.ndjson(\.gz)?$/.test(path);
  if (jsonLines) {
    const raw = createReadStream(path);
    const input: Readable = gz ? raw.pipe(createGunzip()) : raw;
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.trim() === "") continue;
      const where = `${path}:${n}`;
      const recs = lineRecords(parseJson(line, where));
      for (const [i, rec] of recs.entries())
        yield normaliseRecord(rec, recs.length > 1 ? `${where}[${i}]` : where);
    }
    return;
  }
  const buf = readFileSync(path);
  const text = (gz ? gunzipSync(buf) : buf).toString("utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Not one document: JSON lines without the extension.
    let n = 0;
    for (const line of text.split("\n")) {
      n++;
      if (line.trim() === "") continue;
      const where = `${path}:${n}`;
      for (const rec of lineRecords(parseJson(line, where))) yield normaliseRecord(rec, where);
    }
    return;
  }
  for (const [i, rec] of recordsOf(doc, path).entries()) yield normaliseRecord(rec, `${path}: record ${i}`);
}

/** Events of a file or of every .json/.jsonl(.gz) file under a folder, in name order. */
export async function* readTrail(path: string): AsyncGenerator<TrailEvent> {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw importError("ERR_AWS_IMPORT_READ", path, "no such file or folder");
  }
  if (!st.isDirectory()) {
    yield* readTrailFile(path);
    return;
  }
  for (const f of readdirSync(path, { recursive: true }).map(String).sort()) {
    if (/\.(json|jsonl|ndjson)(\.gz)?$/.test(f) && statSync(join(path, f)).isFile())
      yield* readTrailFile(join(path, f));
  }
}

/** Reads a stream of bytes that is already JSON lines (for tests and pipes). */
export async function* readTrailLines(input: Readable, where: string): AsyncGenerator<TrailEvent> {
  let n = 0;
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    n++;
    if (line.trim()) yield normaliseRecord(parseJson(line, `${where}:${n}`), `${where}:${n}`);
  }
}
