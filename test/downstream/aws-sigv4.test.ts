/**
 * The fake's SigV4 verifier: the worked example of the AWS General Reference ("Signature Version 4
 * signing process": IAM ListUsers, 2015-08-30, AKIDEXAMPLE) verifies, and every change to what was
 * signed, or to the key, date or token, is refused with AWS's error code.
 */
import { describe, expect, it } from "vitest";
import { type SignedRequest, verifySigV4 } from "../fakes/sigv4.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SIG = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const AT = new Date("2015-08-30T12:36:00Z");

function example(over: Partial<SignedRequest> = {}, headers: Record<string, string> = {}): SignedRequest {
  return {
    method: "GET",
    url: "/?Action=ListUsers&Version=2010-05-08",
    body: Buffer.alloc(0),
    ...over,
    headers: {
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      host: "iam.amazonaws.com",
      "x-amz-date": "20150830T123600Z",
      authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=${SIG}`,
      ...headers,
    },
  };
}

const keys = (token?: string) => (id: string) =>
  id === "AKIDEXAMPLE" ? { accessKeyId: id, secretAccessKey: SECRET, sessionToken: token } : undefined;

const code = (r: ReturnType<typeof verifySigV4>) => (r.ok ? "ok" : r.code);

describe("SigV4 verification", () => {
  it("verifies the documented example", () => {
    expect(verifySigV4(example(), keys(), AT)).toMatchObject({
      ok: true,
      region: "us-east-1",
      service: "iam",
    });
  });
  it("refuses a changed query, body, signed header, method or signature", () => {
    expect(code(verifySigV4(example({ url: "/?Action=ListRoles&Version=2010-05-08" }), keys(), AT))).toBe(
      "SignatureDoesNotMatch",
    );
    expect(code(verifySigV4(example({ body: Buffer.from("x") }), keys(), AT))).toBe("SignatureDoesNotMatch");
    expect(code(verifySigV4(example({}, { host: "sts.amazonaws.com" }), keys(), AT))).toBe(
      "SignatureDoesNotMatch",
    );
    expect(code(verifySigV4(example({ method: "POST" }), keys(), AT))).toBe("SignatureDoesNotMatch");
    const flipped = example(
      {},
      {
        authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=${SIG.replace(/^5/, "6")}`,
      },
    );
    expect(code(verifySigV4(flipped, keys(), AT))).toBe("SignatureDoesNotMatch");
  });
  it("refuses an unknown key, a stale date, a scope of another day, a missing or wrong token", () => {
    expect(code(verifySigV4(example(), () => undefined, AT))).toBe("InvalidClientTokenId");
    expect(code(verifySigV4(example(), keys(), new Date(AT.getTime() + 16 * 60_000)))).toBe(
      "SignatureDoesNotMatch",
    );
    expect(code(verifySigV4(example({}, { "x-amz-date": "20150831T123600Z" }), keys(), AT))).toBe(
      "SignatureDoesNotMatch",
    );
    expect(code(verifySigV4(example(), keys("session-token"), AT))).toBe("InvalidClientTokenId");
    expect(code(verifySigV4(example({}, { "x-amz-security-token": "forged" }), keys(), AT))).toBe(
      "InvalidClientTokenId",
    );
  });
  it("refuses a missing or malformed Authorization header", () => {
    const none = example();
    const { authorization: _, ...rest } = none.headers as Record<string, string>;
    expect(code(verifySigV4({ ...none, headers: rest }, keys(), AT))).toBe("MissingAuthenticationToken");
    expect(
      code(verifySigV4(example({}, { authorization: "AWS4-HMAC-SHA256 Credential=x" }), keys(), AT)),
    ).toBe("IncompleteSignature");
  });
});
