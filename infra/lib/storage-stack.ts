/**
 * Storage: the snapshot bucket (versioned, SSE-KMS, private, TLS-only, packs tiered by lifecycle,
 * lab isolation in its policy, optional cross-region replication), the access-log bucket,
 * the researchers' EFS file system (home directories through per-researcher access points),
 * the KMS keys, and the ECR repositories of the hub and notebook images.
 */
import { Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { ISecurityGroups, SUBNETS } from './network-stack';
import { acknowledgeWildcard, nagArn } from './nag';
import {
  ImageName,
  NOTEBOOK_ROLE_TAG,
  TAG_KEYS,
  auditBucketName,
  imageRepositoryName,
  labPrefix,
  replicaBucketName,
  replicaKeyAlias,
  snapshotBucketName
} from './names';

/**
 * Days after which a store's packs move to Standard-IA, then to Glacier Deep Archive; and
 * after which an object version no longer current (a pruned pack, a replaced index) expires.
 */
export const LIFECYCLE_DAYS = {
  infrequentAccess: 30,
  deepArchive: 365,
  noncurrentExpiry: 30,
  abortMultipart: 7
} as const;

/** Where a lab's store keeps its packs: the only objects that ever leave Standard. */
export function labPacksPrefix(labId: string): string {
  return `${labPrefix(labId)}data/`;
}

/**
 * Lifecycle of a bucket of lab stores, by object kind. Only packs (`labs/{lab}/data/`, the
 * bulk, read only by restore and verify) go to Standard-IA and then Deep Archive; `config`,
 * keys, indexes, manifests, locks and knowledge-base documents stay in Standard, since every
 * open of a store reads them. Versions no longer current expire, so a prune frees space.
 */
export function storeLifecycleRules(labIds: string[]): s3.LifecycleRule[] {
  const versions: s3.LifecycleRule = {
    id: 'versions',
    noncurrentVersionExpiration: Duration.days(LIFECYCLE_DAYS.noncurrentExpiry),
    expiredObjectDeleteMarker: true,
    abortIncompleteMultipartUploadAfter: Duration.days(LIFECYCLE_DAYS.abortMultipart)
  };
  const packs = labIds.map((labId): s3.LifecycleRule => ({
    id: `packs-${labId}`,
    prefix: labPacksPrefix(labId),
    transitions: [
      {
        storageClass: s3.StorageClass.INFREQUENT_ACCESS,
        transitionAfter: Duration.days(LIFECYCLE_DAYS.infrequentAccess)
      },
      {
        storageClass: s3.StorageClass.DEEP_ARCHIVE,
        transitionAfter: Duration.days(LIFECYCLE_DAYS.deepArchive)
      }
    ]
  }));
  return [versions, ...packs];
}

/** S3 actions on a bucket (not its objects) that list keys and so reveal other labs' data. */
export const LIST_ACTIONS = [
  's3:ListBucket',
  's3:ListBucketVersions',
  's3:ListBucketMultipartUploads'
];

/** Properties of the storage stack. */
export interface IStorageStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
  /** The VPC of the file system's mount targets. */
  readonly vpc: ec2.IVpc;
  /** The deployment's security groups. */
  readonly securityGroups: ISecurityGroups;
}

/** Removal policy of data-bearing resources: kept in prod, destroyed with a dev stack. */
export function dataRemovalPolicy(config: IStageConfig): RemovalPolicy {
  return config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
}

/**
 * A private, TLS-only bucket for S3 server access logs and load balancer logs. Those log
 * deliveries support only SSE-S3, so it is not KMS-encrypted.
 */
export function makeLogsBucket(scope: Construct, id: string, config: IStageConfig): s3.Bucket {
  const bucket = new s3.Bucket(scope, id, {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    versioned: true,
    lifecycleRules: [
      {
        expiration: Duration.days(config.retainData ? 730 : 90),
        noncurrentVersionExpiration: Duration.days(30)
      }
    ],
    removalPolicy: dataRemovalPolicy(config),
    autoDeleteObjects: !config.retainData
  });
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason: 'This is the access-log destination itself; logging it into itself would loop.'
  });
  return bucket;
}

/** A customer-managed KMS key with yearly rotation. */
function makeKey(scope: Construct, id: string, description: string, config: IStageConfig): kms.Key {
  return new kms.Key(scope, id, {
    description,
    enableKeyRotation: true,
    removalPolicy: dataRemovalPolicy(config),
    pendingWindow: Duration.days(config.retainData ? 30 : 7)
  });
}

/**
 * Statements of the snapshot bucket's policy that confine every principal tagged with a
 * `lab_id` to `labs/{lab_id}/`, whatever its identity policies say (defence in depth).
 */
export function labIsolationStatements(
  bucket: s3.IBucket,
  labIds: string[]
): iam.PolicyStatement[] {
  // One statement per lab for objects: the object key has no condition key, only the ARN.
  const statements = labIds.map(
    labId =>
      new iam.PolicyStatement({
        sid: `OnlyLab${statementId(labId)}`,
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:*'],
        // The bucket itself is left to the listing statement below, which checks the prefix.
        notResources: [bucket.bucketArn, bucket.arnForObjects(`${labPrefix(labId)}*`)],
        conditions: { StringEquals: { [`aws:PrincipalTag/${TAG_KEYS.labId}`]: labId } }
      })
  );
  // One statement for every lab's listing: s3:prefix is a condition key, so the principal's
  // own lab_id tag can be compared with it (the Null test guarantees the tag resolves).
  statements.push(
    new iam.PolicyStatement({
      sid: 'OnlyOwnLabListing',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: LIST_ACTIONS,
      resources: [bucket.bucketArn],
      conditions: {
        Null: { [`aws:PrincipalTag/${TAG_KEYS.labId}`]: 'false' },
        StringNotLike: { 's3:prefix': `labs/\${aws:PrincipalTag/${TAG_KEYS.labId}}/*` }
      }
    })
  );
  // A notebook role whose lab is missing or unknown gets nothing at all.
  statements.push(
    new iam.PolicyStatement({
      sid: 'NotebookRolesNeedAKnownLab',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:*'],
      resources: [bucket.bucketArn, bucket.arnForObjects('*')],
      conditions: {
        StringEquals: { [`aws:PrincipalTag/${TAG_KEYS.role}`]: NOTEBOOK_ROLE_TAG },
        StringNotEquals: { [`aws:PrincipalTag/${TAG_KEYS.labId}`]: labIds }
      }
    })
  );
  return statements;
}

function statementId(labId: string): string {
  return labId
    .split('-')
    .map(part => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** Buckets, file system, keys and image repositories. */
export class StorageStack extends Stack {
  /** Snapshots of every lab, under `labs/{lab_id}/`. */
  readonly snapshotBucket: s3.Bucket;
  /** The key of the snapshot bucket. */
  readonly snapshotKey: kms.Key;
  /** The audit anchor: each head of the hub service's audit chain, locked (Object Lock). */
  readonly auditBucket: s3.Bucket;
  /** S3 server access logs and load balancer logs. */
  readonly logsBucket: s3.Bucket;
  /** Researchers' home directories (one access point each, created by the spawner). */
  readonly fileSystem: efs.FileSystem;
  /** The key of the file system. */
  readonly fileSystemKey: kms.Key;
  /** The hub image repository. */
  readonly hubRepository: ecr.Repository;
  /** The notebook image repository. */
  readonly notebookRepository: ecr.Repository;
  /** The role S3 replicates snapshots with (only with a `replicaRegion`). */
  replicationRole?: iam.Role;

  constructor(scope: Construct, id: string, props: IStorageStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.logsBucket = makeLogsBucket(this, 'LogsBucket', config);
    this.snapshotKey = makeKey(this, 'SnapshotKey', 'West Tek snapshot bucket', config);
    this.fileSystemKey = makeKey(
      this,
      'FileSystemKey',
      'West Tek researcher home directories',
      config
    );

    this.snapshotBucket = new s3.Bucket(this, 'SnapshotBucket', {
      bucketName: snapshotBucketName(config.stage, this.account, this.region),
      versioned: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.snapshotKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: this.logsBucket,
      serverAccessLogsPrefix: 'snapshots/',
      lifecycleRules: storeLifecycleRules(config.labs.map(lab => lab.id)),
      ...this.replication(config),
      removalPolicy: dataRemovalPolicy(config),
      autoDeleteObjects: !config.retainData
    });
    for (const statement of labIsolationStatements(
      this.snapshotBucket,
      config.labs.map(lab => lab.id)
    )) {
      this.snapshotBucket.addToResourcePolicy(statement);
    }

    this.grantReplicationSource();

    // The hub service records each head of its audit chain here, every object locked in
    // COMPLIANCE mode (westtek_hub/audit_anchor.py), so a log cut in the database shows.
    // Stages that do not retain data lock heads for a day only (compute stack), after which
    // the bucket empties and goes with its stack.
    this.auditBucket = new s3.Bucket(this, 'AuditBucket', {
      bucketName: auditBucketName(config.stage, this.account, this.region),
      versioned: true,
      objectLockEnabled: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: this.logsBucket,
      serverAccessLogsPrefix: 'audit/',
      removalPolicy: dataRemovalPolicy(config),
      autoDeleteObjects: !config.retainData
    });

    this.fileSystem = new efs.FileSystem(this, 'HomeFileSystem', {
      vpc: props.vpc,
      vpcSubnets: { subnetGroupName: SUBNETS.app },
      securityGroup: props.securityGroups.fileSystem,
      encrypted: true,
      kmsKey: this.fileSystemKey,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      throughputMode: efs.ThroughputMode.ELASTIC,
      lifecyclePolicy: efs.LifecyclePolicy.AFTER_30_DAYS,
      outOfInfrequentAccessPolicy: efs.OutOfInfrequentAccessPolicy.AFTER_1_ACCESS,
      enableAutomaticBackups: true,
      allowAnonymousAccess: false,
      removalPolicy: dataRemovalPolicy(config)
    });
    this.addFileSystemPolicy();

    const repository = (repoId: string, image: ImageName) =>
      new ecr.Repository(this, repoId, {
        repositoryName: imageRepositoryName(config.stage, image),
        imageScanOnPush: true,
        lifecycleRules: [{ maxImageCount: 30, description: 'keep the last 30 images' }],
        removalPolicy: dataRemovalPolicy(config),
        emptyOnDelete: !config.retainData
      });
    this.hubRepository = repository('HubRepository', 'hub');
    this.notebookRepository = repository('NotebookRepository', 'notebook');
  }

  /**
   * Mounts must use TLS, IAM authorisation and an access point: a task can only ever see the
   * home directory (`/home/{researcher}`, its owner's POSIX uid/gid) its access point roots it
   * in, never the whole file system, and nobody gets NFS root.
   */
  private addFileSystemPolicy(): void {
    const fs = this.fileSystem;
    fs.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'MountThroughAccessPointsWithIam',
        effect: iam.Effect.ALLOW,
        principals: [new iam.AccountRootPrincipal()],
        actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
        resources: ['*'],
        conditions: { Bool: { 'elasticfilesystem:AccessedViaMountTarget': 'true' } }
      })
    );
    fs.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyWithoutTls',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['*'],
        resources: ['*'],
        conditions: { Bool: { 'aws:SecureTransport': 'false' } }
      })
    );
    fs.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyMountsWithoutAccessPoint',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: [
          'elasticfilesystem:ClientMount',
          'elasticfilesystem:ClientWrite',
          'elasticfilesystem:ClientRootAccess'
        ],
        resources: ['*'],
        conditions: { Null: { 'elasticfilesystem:AccessPointArn': 'true' } }
      })
    );
  }

  /** Replication rules to the replica bucket in `replicaRegion`, when one is configured. */
  private replication(config: IStageConfig): Partial<s3.BucketProps> {
    if (!config.replicaRegion) {
      return {};
    }
    const region = config.replicaRegion;
    const destinationName = replicaBucketName(config.stage, this.account);
    const destinationArn = `arn:${this.partition}:s3:::${destinationName}`;
    const destination = s3.Bucket.fromBucketAttributes(this, 'ReplicaBucket', {
      bucketArn: destinationArn,
      bucketName: destinationName,
      region
    });
    // S3 accepts the alias ARN of the replica key, which the replica stack creates by name.
    const destinationKey = kms.Key.fromKeyArn(
      this,
      'ReplicaKey',
      `arn:${this.partition}:kms:${region}:${this.account}:${replicaKeyAlias(config.stage)}`
    );
    // Written out rather than granted: grants cannot name a key by alias in another region.
    const role = new iam.Role(this, 'ReplicationRole', {
      assumedBy: new iam.ServicePrincipal('s3.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } }
      }),
      description: 'S3 replication of West Tek snapshots to the replica region'
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReplicateIntoReplica',
        actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
        resources: [`${destinationArn}/*`]
      })
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EncryptWithReplicaKey',
        actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        resources: [`arn:${this.partition}:kms:${region}:${this.account}:key/*`],
        conditions: {
          StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` },
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': replicaKeyAlias(config.stage) }
        }
      })
    );
    acknowledgeWildcard(
      role,
      nagArn(this, 'kms', 'key/*', region),
      'The replica key is created in another region and known only by its alias; kms:ResourceAliases pins it.'
    );
    acknowledgeWildcard(
      role,
      `arn:${this.partition}:s3:::${replicaBucketName(config.stage, '<AWS::AccountId>')}/*`,
      'Replication writes every replicated object of the replica bucket.'
    );
    this.replicationRole = role;
    return {
      replicationRole: role,
      replicationRules: [
        {
          destination,
          kmsKey: destinationKey,
          sseKmsEncryptedObjects: true,
          deleteMarkerReplication: true,
          priority: 1
        }
      ]
    };
  }

  /** Source-side permissions of the replication role, once the bucket exists. */
  private grantReplicationSource(): void {
    const role = this.replicationRole;
    if (!role) {
      return;
    }
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadReplicationConfiguration',
        actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
        resources: [this.snapshotBucket.bucketArn]
      })
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadObjectVersions',
        actions: [
          's3:GetObjectVersionForReplication',
          's3:GetObjectVersionAcl',
          's3:GetObjectVersionTagging'
        ],
        resources: [this.snapshotBucket.arnForObjects('*')]
      })
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptSource',
        actions: ['kms:Decrypt'],
        resources: [this.snapshotKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${this.region}.amazonaws.com` } }
      })
    );
    const bucket = this.snapshotBucket.node.defaultChild as s3.CfnBucket;
    acknowledgeWildcard(
      role,
      `<${this.getLogicalId(bucket)}.Arn>/*`,
      'Replication reads every object version of the snapshot bucket.'
    );
  }
}
