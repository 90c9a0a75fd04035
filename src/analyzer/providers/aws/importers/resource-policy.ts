/**
 * Resource-based policies as the services' CLIs print them:
 * - S3 `get-bucket-policy`, KMS `get-key-policy`, Lambda `get-policy`: `{"Policy": "<json>"}`;
 * - Secrets Manager `get-resource-policy`: `{"ARN", "Name", "ResourcePolicy": "<json>"}`;
 * - SQS `get-queue-attributes` / SNS `get-topic-attributes`: `{"Attributes": {"Policy": "<json>", …}}`;
 * - or the bare policy document.
 */
import { type Policy, parsePolicy } from "../evaluator/index.js";
import { importError, isRecord, policyDocument } from "./errors.js";

export interface ImportedResourcePolicy {
  readonly policy: Policy;
  /** The resource the output names, when it names one (Secrets Manager, SQS, SNS). */
  readonly resourceArn?: string;
  readonly format: "document" | "s3-kms-lambda" | "secretsmanager" | "sqs-sns";
}

export function importResourcePolicy(json: unknown, where: string, id = where): ImportedResourcePolicy {
  if (!isRecord(json))
    throw importError("ERR_AWS_IMPORT_FORMAT", where, "a resource policy must be a JSON object");
  const parse = (raw: unknown) => parsePolicy("resource", id, policyDocument(raw, where));
  if ("Statement" in json) return { policy: parsePolicy("resource", id, json), format: "document" };
  if (typeof json.ResourcePolicy === "string") {
    return {
      policy: parse(json.ResourcePolicy),
      format: "secretsmanager",
      ...(typeof json.ARN === "string" ? { resourceArn: json.ARN } : {}),
    };
  }
  if (typeof json.Policy === "string" || isRecord(json.Policy)) {
    return { policy: parse(json.Policy), format: "s3-kms-lambda" };
  }
  if (isRecord(json.Attributes) && typeof json.Attributes.Policy === "string") {
    const arn = json.Attributes.QueueArn ?? json.Attributes.TopicArn;
    return {
      policy: parse(json.Attributes.Policy),
      format: "sqs-sns",
      ...(typeof arn === "string" ? { resourceArn: arn } : {}),
    };
  }
  throw importError(
    "ERR_AWS_IMPORT_FORMAT",
    where,
    "not a resource policy: expected a policy document, `Policy`, `ResourcePolicy` or `Attributes.Policy`",
  );
}
