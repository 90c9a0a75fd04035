/**
 * The AWS account the end-to-end tests and the creds bench run against the fake STS/IAM: the broker's
 * IAM user (its test-only keys), the trust policy a writ role needs to let it in with tags and a
 * source identity, and a role policy wide enough that the session policy does the scoping.
 */
export const ACCOUNT = "111122223333";

export const roleArn = (name: string): string => `arn:aws:iam::${ACCOUNT}:role/${name}`;

export const BROKER = {
  userArn: `arn:aws:iam::${ACCOUNT}:user/writ-broker`,
  accessKeyId: "AKIAWRITBROKER000002",
  secretAccessKey: "broker-secret-key-for-tests-only-0002",
};

export const TRUST = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: { AWS: BROKER.userArn },
      Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    },
  ],
};

export const ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }],
};
