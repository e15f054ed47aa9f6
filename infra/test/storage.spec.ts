/**
 * Storage on both stages: the snapshot bucket is private and stays private (checked by a
 * detector that is itself shown to catch each way a bucket becomes public), versioned,
 * KMS-encrypted, TLS-only, packs tiered by lifecycle, old versions expired, logged,
 * replicated in prod; the home file system is encrypted and mountable only through access
 * points, with TLS.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Match } from 'aws-cdk-lib/assertions';

import { App } from 'aws-cdk-lib';

import { MAX_LABS, loadStageConfig } from '../lib/config';
import { NetworkStack } from '../lib/network-stack';
import { LIFECYCLE_DAYS, StorageStack } from '../lib/storage-stack';
import { bucketExposures } from './bucket-exposure';
import { STAGES, resourcesOf, synthStage, testContext } from './stage';

/** The snapshot bucket of a storage template. */
function snapshotBucket(storage: any): [string, any] {
  const buckets = resourcesOf(storage, 'AWS::S3::Bucket').filter(([id]) =>
    id.startsWith('SnapshotBucket')
  );
  assert.equal(buckets.length, 1);
  return buckets[0];
}

describe('the public-bucket detector', () => {
  const { json } = synthStage('prod');
  const mutate = (change: (bucket: any, storage: any) => void) => {
    const storage = structuredClone(json.storage);
    const [, bucket] = snapshotBucket(storage);
    change(bucket, storage);
    return bucketExposures({ storage });
  };

  it('catches a public-access block switched off', () => {
    for (const flag of [
      'BlockPublicAcls',
      'BlockPublicPolicy',
      'IgnorePublicAcls',
      'RestrictPublicBuckets'
    ]) {
      const problems = mutate(bucket => {
        bucket.Properties.PublicAccessBlockConfiguration[flag] = false;
      });
      assert.ok(
        problems.some(problem => problem.includes(flag)),
        flag
      );
    }
    assert.ok(
      mutate(bucket => delete bucket.Properties.PublicAccessBlockConfiguration).length >= 4
    );
  });

  it('catches public ACLs and website hosting', () => {
    assert.ok(mutate(bucket => (bucket.Properties.AccessControl = 'PublicRead')).length);
    assert.ok(mutate(bucket => delete bucket.Properties.OwnershipControls).length);
    assert.ok(
      mutate(bucket => (bucket.Properties.WebsiteConfiguration = { IndexDocument: 'index.html' }))
        .length
    );
  });

  it('catches a policy that lets anyone, or another account, read', () => {
    const addStatement = (statement: any) =>
      mutate((_bucket, storage) => {
        const [, policy] = resourcesOf(storage, 'AWS::S3::BucketPolicy').find(([id]) =>
          id.startsWith('SnapshotBucket')
        )!;
        policy.Properties.PolicyDocument.Statement.push(statement);
      });
    assert.ok(
      addStatement({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: '*' })
        .length
    );
    assert.ok(
      addStatement({
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: 's3:GetObject',
        Resource: '*'
      }).length
    );
    assert.ok(
      addStatement({
        Effect: 'Allow',
        Principal: { AWS: 'arn:aws:iam::999999999999:root' },
        Action: 's3:GetObject',
        Resource: '*'
      }).length
    );
    assert.ok(
      addStatement({
        Effect: 'Allow',
        NotPrincipal: { AWS: 'x' },
        Action: 's3:GetObject',
        Resource: '*'
      }).length
    );
  });
});

describe('the snapshot bucket policy', () => {
  it(`fits S3's 20 KB limit with ${MAX_LABS} labs of the longest ids`, () => {
    const labs = Array.from({ length: MAX_LABS }, (_, i) => ({
      id: `lab-${String(i).padStart(2, '0')}-${'x'.repeat(41)}`
    }));
    const app = new App({ context: testContext('prod', { labs }) });
    const config = loadStageConfig(app.node);
    const network = new NetworkStack(app, 'Network', { config, env: { region: config.region } });
    const storage = new StorageStack(app, 'Storage', {
      config,
      vpc: network.vpc,
      securityGroups: network.securityGroups,
      env: { region: config.region }
    });
    const policy = storage.resolve(storage.snapshotBucket.policy!.document);
    const longestArn = `arn:aws-us-gov:s3:::${'b'.repeat(63)}`;
    const literal = (value: any): any => {
      if (Array.isArray(value)) {
        return value.map(literal);
      }
      if (value && typeof value === 'object') {
        if ('Fn::GetAtt' in value) {
          return longestArn;
        }
        if ('Fn::Join' in value) {
          const [separator, parts] = value['Fn::Join'];
          return parts.map(literal).join(separator);
        }
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, literal(v)]));
      }
      return value;
    };
    const text = JSON.stringify(literal(policy));
    assert.ok(!text.includes('Fn::'), 'every reference replaced by a literal');
    assert.ok(text.length < 20 * 1024, `${text.length} bytes`);
  });
});

for (const stage of STAGES) {
  describe(`storage (${stage})`, () => {
    const { templates, json, config } = synthStage(stage);
    const storage = templates.storage;

    it('has no bucket that is or could become public, in any stack', () => {
      assert.deepEqual(bucketExposures(json), []);
    });

    it('versions and KMS-encrypts the snapshot bucket, with TLS 1.2+ only', () => {
      const [id, bucket] = snapshotBucket(json.storage);
      assert.equal(bucket.Properties.VersioningConfiguration.Status, 'Enabled');
      const [rule] = bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration;
      assert.equal(rule.ServerSideEncryptionByDefault.SSEAlgorithm, 'aws:kms');
      assert.ok(
        rule.ServerSideEncryptionByDefault.KMSMasterKeyID['Fn::GetAtt'][0].startsWith('SnapshotKey')
      );
      assert.equal(rule.BucketKeyEnabled, true);
      storage.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } }
            }),
            Match.objectLike({
              Effect: 'Deny',
              Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } }
            })
          ])
        }
      });
      storage.hasResourceProperties('AWS::KMS::Key', {
        EnableKeyRotation: true,
        Description: 'West Tek snapshot bucket'
      });
    });

    it('tiers only packs (Standard-IA at 30 days, Deep Archive at 365), per lab', () => {
      const [, bucket] = snapshotBucket(json.storage);
      const rules: any[] = bucket.Properties.LifecycleConfiguration.Rules;
      assert.ok(rules.every(rule => rule.Status === 'Enabled'));
      const tiering = rules.filter(rule => rule.Transitions);
      // one rule per lab, each confined to that lab's packs: config, keys, indexes, manifests,
      // locks and knowledge-base documents never leave Standard, so a store always opens
      assert.deepEqual(
        tiering.map(rule => rule.Prefix),
        config.labs.map(lab => `labs/${lab.id}/data/`)
      );
      for (const rule of tiering) {
        assert.deepEqual(rule.Transitions, [
          { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
          { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 365 }
        ]);
        assert.equal(rule.Filter, undefined);
      }
      assert.ok(rules.every(rule => !rule.NoncurrentVersionTransitions));
      assert.equal(LIFECYCLE_DAYS.infrequentAccess, 30);
      assert.equal(LIFECYCLE_DAYS.deepArchive, 365);
    });

    it('expires old versions and delete markers, aborts stale uploads, bucket-wide', () => {
      const [, bucket] = snapshotBucket(json.storage);
      const rules: any[] = bucket.Properties.LifecycleConfiguration.Rules;
      const versions = rules.filter(rule => !rule.Transitions);
      assert.equal(versions.length, 1);
      const [rule] = versions;
      // no prefix: a pruned pack and a replaced index file free their space in every lab
      assert.equal(rule.Prefix, undefined);
      assert.deepEqual(rule.NoncurrentVersionExpiration, { NoncurrentDays: 30 });
      assert.equal(rule.ExpiredObjectDeleteMarker, true);
      assert.equal(rule.AbortIncompleteMultipartUpload.DaysAfterInitiation, 7);
      assert.equal(rule.ExpirationInDays, undefined);
    });

    it('logs access to the snapshot bucket', () => {
      const [, bucket] = snapshotBucket(json.storage);
      assert.ok(
        bucket.Properties.LoggingConfiguration.DestinationBucketName.Ref.startsWith('LogsBucket')
      );
    });

    it(
      stage === 'prod' ? 'replicates snapshots to the replica region' : 'does not replicate in dev',
      () => {
        const [, bucket] = snapshotBucket(json.storage);
        const replication = bucket.Properties.ReplicationConfiguration;
        if (!config.replicaRegion) {
          assert.equal(replication, undefined);
          assert.equal(json.replica, undefined);
          return;
        }
        const [rule] = replication.Rules;
        assert.equal(rule.Status, 'Enabled');
        assert.match(JSON.stringify(rule.Destination.Bucket), /westtek-prod-snapshot-replica-/);
        assert.match(
          JSON.stringify(rule.Destination.EncryptionConfiguration.ReplicaKmsKeyID),
          new RegExp(`kms:${config.replicaRegion}:`)
        );
        assert.equal(rule.SourceSelectionCriteria.SseKmsEncryptedObjects.Status, 'Enabled');
        templates.replica.hasResourceProperties('AWS::S3::Bucket', {
          VersioningConfiguration: { Status: 'Enabled' },
          PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicPolicy: true })
        });
        // a store opened from the replica after a failover reads the same way
        const [, replica] = resourcesOf(json.replica, 'AWS::S3::Bucket').find(([id]) =>
          id.startsWith('ReplicaBucket')
        )!;
        assert.deepEqual(
          replica.Properties.LifecycleConfiguration,
          bucket.Properties.LifecycleConfiguration
        );
        templates.replica.hasResourceProperties('AWS::KMS::Alias', {
          AliasName: 'alias/westtek-prod-snapshot-replica'
        });
      }
    );

    it('encrypts the home file system and admits mounts only through access points, over TLS', () => {
      storage.hasResourceProperties('AWS::EFS::FileSystem', {
        Encrypted: true,
        KmsKeyId: Match.anyValue(),
        BackupPolicy: { Status: 'ENABLED' },
        FileSystemPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Sid: 'DenyWithoutTls',
              Effect: 'Deny',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } }
            }),
            Match.objectLike({
              Sid: 'DenyMountsWithoutAccessPoint',
              Effect: 'Deny',
              Condition: { Null: { 'elasticfilesystem:AccessPointArn': 'true' } }
            })
          ])
        }
      });
    });

    it(
      stage === 'prod' ? 'retains data when the stack is deleted' : 'destroys data with the stack',
      () => {
        const expected = stage === 'prod' ? 'Retain' : 'Delete';
        for (const type of [
          'AWS::S3::Bucket',
          'AWS::EFS::FileSystem',
          'AWS::KMS::Key',
          'AWS::ECR::Repository'
        ]) {
          for (const [id, resource] of resourcesOf(json.storage, type)) {
            assert.equal(resource.DeletionPolicy, expected, `${type} ${id}`);
          }
        }
        for (const [id, resource] of resourcesOf(json.data, 'AWS::RDS::DBInstance')) {
          assert.equal(resource.DeletionPolicy, stage === 'prod' ? 'Retain' : 'Delete', id);
        }
      }
    );
  });
}
