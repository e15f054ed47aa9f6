/**
 * AI: the lab knowledge bases the Drift Analyzer and Knowledge Transfer agents retrieve from.
 *
 * The agents themselves run inside West Tek (westtek_core.agents: their loop and tools, with
 * the caller's role), calling the models through Bedrock's Converse API, which needs no
 * resources here: the compute stack grants `bedrock:InvokeModel` on the `foundationModelArn`s
 * of `bedrockModelIds` only, the one list of allowed models (the first is the default).
 * Deployed when `bedrockKnowledgeBases` is on: one knowledge base per lab over
 * the lab's `labs/{lab_id}/kb/` prefix, stored in an S3 vector index of its own, so the
 * lab isolation of the snapshot bucket carries over to retrieval.
 */
import { CfnOutput, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3vectors from 'aws-cdk-lib/aws-s3vectors';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { acknowledgeWildcard, nagSnapshotObjectArn } from './nag';
import { TAG_KEYS, labPrefix, snapshotBucketName } from './names';

/** Properties of the AI stack. */
export interface IAiStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
  /** The snapshot bucket's key. */
  readonly snapshotKey: kms.IKey;
}

/** A lab's knowledge base. */
export interface ILabKnowledgeBase {
  /** Knowledge base id (for `bedrock-agent-runtime retrieve`). */
  readonly id: string;
  /** Knowledge base ARN (what the lab's notebook role may retrieve from and ingest into). */
  readonly arn: string;
  /** Id of its S3 data source over `labs/{lab_id}/kb/` (for `StartIngestionJob`). */
  readonly dataSourceId: string;
}

/** The ARN of a Bedrock foundation model in a stack's region. */
export function foundationModelArn(stack: Stack, modelId: string): string {
  return `arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${modelId}`;
}

/** The labs' Bedrock knowledge bases. */
export class AiStack extends Stack {
  /** Knowledge bases by lab id. */
  readonly knowledgeBases: Record<string, ILabKnowledgeBase> = {};

  constructor(scope: Construct, id: string, props: IAiStackProps) {
    super(scope, id, props);
    const { config } = props;
    if (config.bedrockKnowledgeBases) {
      // Knowledge-base documents live under `labs/{lab_id}/kb/` of the snapshot bucket.
      const bucket = s3.Bucket.fromBucketName(
        this,
        'SnapshotBucket',
        snapshotBucketName(config.stage, this.account, this.region)
      );
      this.makeKnowledgeBases(config, bucket, props.snapshotKey);
    }
  }

  private bedrockRole(id: string, description: string, sourceArn: string): iam.Role {
    return new iam.Role(this, id, {
      description,
      assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: { 'aws:SourceArn': sourceArn }
        }
      })
    });
  }

  private makeKnowledgeBases(config: IStageConfig, bucket: s3.IBucket, key: kms.IKey): void {
    const vectorBucket = new s3vectors.CfnVectorBucket(this, 'VectorBucket', {});
    const embeddingModelArn = foundationModelArn(this, config.bedrockEmbeddingModelId);
    const kbIds: Record<string, string> = {};
    const dataSourceIds: Record<string, string> = {};
    for (const lab of config.labs) {
      const index = new s3vectors.CfnIndex(this, `Index-${lab.id}`, {
        vectorBucketArn: vectorBucket.attrVectorBucketArn,
        indexName: `lab-${lab.id}`,
        dataType: 'float32',
        dimension: 1024,
        distanceMetric: 'cosine',
        metadataConfiguration: {
          nonFilterableMetadataKeys: ['AMAZON_BEDROCK_TEXT', 'AMAZON_BEDROCK_METADATA']
        }
      });
      // One role per knowledge base: ingestion of lab A can only ever read lab A's documents.
      const role = this.bedrockRole(
        `KnowledgeBaseRole-${lab.id}`,
        `West Tek knowledge base of lab ${lab.id}`,
        `arn:${this.partition}:bedrock:${this.region}:${this.account}:knowledge-base/*`
      );
      const kbPrefix = `${labPrefix(lab.id)}kb/`;
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'EmbedDocuments',
          actions: ['bedrock:InvokeModel'],
          resources: [embeddingModelArn]
        })
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ListLabDocuments',
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': `${kbPrefix}*` } }
        })
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'ReadLabDocuments',
          actions: ['s3:GetObject'],
          resources: [bucket.arnForObjects(`${kbPrefix}*`)]
        })
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'DecryptLabDocuments',
          actions: ['kms:Decrypt'],
          resources: [key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${this.region}.amazonaws.com` } }
        })
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'UseLabVectorIndex',
          actions: [
            's3vectors:GetIndex',
            's3vectors:PutVectors',
            's3vectors:GetVectors',
            's3vectors:DeleteVectors',
            's3vectors:QueryVectors'
          ],
          resources: [index.attrIndexArn]
        })
      );
      // The lab_id tag confines the role to the lab's prefix in the bucket policy as well.
      Tags.of(role).add(TAG_KEYS.labId, lab.id);
      acknowledgeWildcard(
        role,
        nagSnapshotObjectArn(this, config.stage, `${kbPrefix}*`),
        `Ingestion reads the documents of lab ${lab.id} only, under its own prefix.`
      );

      const kb = new bedrock.CfnKnowledgeBase(this, `KnowledgeBase-${lab.id}`, {
        name: `westtek-${config.stage}-${lab.id}`,
        description: `Notebooks, manifests, install history and experiment logs of lab ${lab.id}`,
        roleArn: role.roleArn,
        knowledgeBaseConfiguration: {
          type: 'VECTOR',
          vectorKnowledgeBaseConfiguration: { embeddingModelArn }
        },
        storageConfiguration: {
          type: 'S3_VECTORS',
          s3VectorsConfiguration: { indexArn: index.attrIndexArn }
        }
      });
      kb.node.addDependency(role);
      const dataSource = new bedrock.CfnDataSource(this, `DataSource-${lab.id}`, {
        knowledgeBaseId: kb.attrKnowledgeBaseId,
        name: `lab-${lab.id}`,
        dataDeletionPolicy: 'DELETE',
        dataSourceConfiguration: {
          type: 'S3',
          s3Configuration: { bucketArn: bucket.bucketArn, inclusionPrefixes: [kbPrefix] }
        },
        // West Tek writes each parent passage as its own object, already chunked: retrieval
        // then returns whole parents, and each keeps its metadata (source, cell locator)
        vectorIngestionConfiguration: { chunkingConfiguration: { chunkingStrategy: 'NONE' } }
      });
      this.knowledgeBases[lab.id] = {
        id: kb.attrKnowledgeBaseId,
        arn: kb.attrKnowledgeBaseArn,
        dataSourceId: dataSource.attrDataSourceId
      };
      kbIds[lab.id] = kb.attrKnowledgeBaseId;
      dataSourceIds[lab.id] = dataSource.attrDataSourceId;
    }
    new CfnOutput(this, 'KnowledgeBaseIds', { value: this.toJsonString(kbIds) });
    new CfnOutput(this, 'KnowledgeBaseDataSourceIds', { value: this.toJsonString(dataSourceIds) });
  }
}
