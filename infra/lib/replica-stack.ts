/**
 * Replica: the bucket in `replicaRegion` that S3 replicates the snapshot bucket into, with its
 * own KMS key. Deployed only when `replicaRegion` is set; named by convention (see
 * `replicaBucketName`) so the source stack needs no cross-region reference.
 */
import { Stack, StackProps } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { replicaBucketName, replicaKeyAlias } from './names';
import { dataRemovalPolicy, makeLogsBucket, storeLifecycleRules } from './storage-stack';

/** Properties of the replica stack. */
export interface IReplicaStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
}

/** The snapshot replica bucket and its key. */
export class ReplicaStack extends Stack {
  /** The replica bucket. */
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: IReplicaStackProps) {
    super(scope, id, props);
    const { config } = props;

    const key = new kms.Key(this, 'ReplicaKey', {
      description: 'West Tek snapshot replica',
      enableKeyRotation: true,
      alias: replicaKeyAlias(config.stage),
      removalPolicy: dataRemovalPolicy(config)
    });
    const logs = makeLogsBucket(this, 'LogsBucket', config);
    this.bucket = new s3.Bucket(this, 'ReplicaBucket', {
      bucketName: replicaBucketName(config.stage, this.account),
      versioned: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 'replica/',
      // the same tiers as the source, so a store opened from the replica reads the same way
      lifecycleRules: storeLifecycleRules(config.labs.map(lab => lab.id)),
      removalPolicy: dataRemovalPolicy(config),
      autoDeleteObjects: !config.retainData
    });
  }
}
