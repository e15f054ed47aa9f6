/**
 * Helpers to acknowledge cdk-nag findings, always with a reason, in the form cdk-nag prints
 * them (account ids as `<AWS::AccountId>`, same-stack attributes as `<LogicalId.Attr>`).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';

import { auditBucketName, snapshotBucketName } from './names';

/** Acknowledge cdk-nag's wildcard finding (AwsSolutions-IAM5) on one resource, with the reason. */
export function acknowledgeWildcard(scope: Construct, resource: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
}

/** An ARN of the stack's account and region as cdk-nag prints it. */
export function nagArn(stack: Stack, service: string, resource: string, region?: string): string {
  return `arn:${stack.partition}:${service}:${region ?? stack.region}:<AWS::AccountId>:${resource}`;
}

/** An object ARN of a stage's audit anchor bucket as cdk-nag prints it. */
export function nagAuditObjectArn(stack: Stack, stage: string, key: string): string {
  return `arn:${stack.partition}:s3:::${auditBucketName(stage, '<AWS::AccountId>', stack.region)}/${key}`;
}

/** An object ARN of a stage's snapshot bucket as cdk-nag prints it. */
export function nagSnapshotObjectArn(stack: Stack, stage: string, key: string): string {
  return `arn:${stack.partition}:s3:::${snapshotBucketName(stage, '<AWS::AccountId>', stack.region)}/${key}`;
}
