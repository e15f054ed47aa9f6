/**
 * Stage configuration: the built-in defaults of `dev` and `prod`, overridden by the CDK
 * context (`cdk.json`, or `-c` on the command line). Everything a stack varies by stage comes
 * from here, so the stacks never read the context themselves.
 */
import { IMAGE_TAG, LAB_ID_PATTERN } from './names';

/** The two deployment stages. */
export type StageName = 'dev' | 'prod';

/** A research lab: a JupyterHub group, a Cognito group and an S3 prefix of its own. */
export interface ILabConfig {
  /** The lab id: lowercase letters, digits and dashes (e.g. `vault-13`). */
  readonly id: string;
  /** The Active Directory group whose members belong to the lab (as sent in the SAML assertion). */
  readonly adGroup?: string;
  /** The AD group whose members administer the lab (its `{id}-admins` group in the hub). */
  readonly adminAdGroup?: string;
  /** E-mail addresses subscribed to the lab's alert topic (critical drift). */
  readonly alertEmails?: string[];
  /** Phone numbers (E.164, e.g. `+15555550100`) sent critical drift by SMS. */
  readonly alertSms?: string[];
}

/** Everything that differs between deployments; see docs/deploy.md for each value. */
export interface IStageConfig {
  /** The stage: `dev` or `prod`. */
  readonly stage: StageName;
  /**
   * The AWS region the stage deploys to. The account is left to the credentials of `cdk
   * deploy`, so synthesis needs no AWS access.
   */
  readonly region: string;
  /** The labs; each gets a notebook task role and a Cognito group. */
  readonly labs: ILabConfig[];

  /** NAT gateways: one in dev (one AZ carries egress), one per AZ in prod. */
  readonly natGateways: number;

  /** DNS name researchers open (and the Secure Browser's start page), e.g. `hub.westtek.example.org`. */
  readonly hubDomainName: string;
  /** ACM certificate for `hubDomainName`, in the deployment region. */
  readonly certificateArn: string;
  /** CIDR ranges allowed to reach the hub's load balancer on HTTPS. */
  readonly allowedCidrs: string[];
  /** Whether the load balancer is internet-facing (else reachable only inside the VPC). */
  readonly internetFacing: boolean;

  /** Tag of the hub and notebook images in the ECR repositories the storage stack creates. */
  readonly imageTag: string;
  /** A full hub image URI instead of the ECR repository's (optional). */
  readonly hubImage?: string;
  /** A full notebook image URI instead of the ECR repository's (optional). */
  readonly notebookImage?: string;
  /** Family of the notebook task definition the spawner registers revisions in. */
  readonly notebookTaskFamily: string;
  /** Hub task size. */
  readonly hubCpu: number;
  /** Hub task memory (MiB). */
  readonly hubMemoryMiB: number;

  /** RDS instance class, e.g. `t4g.micro`. */
  readonly databaseInstanceType: string;
  /** Multi-AZ database (prod). */
  readonly databaseMultiAz: boolean;
  /** Days of automated database backups. */
  readonly databaseBackupDays: number;

  /** Globally unique prefix of the Cognito hosted UI domain. */
  readonly cognitoDomainPrefix: string;
  /** SAML metadata URL of the Active Directory federation (AD FS / Entra ID); optional in dev. */
  readonly samlMetadataUrl?: string;
  /** SAML attribute carrying the user's AD groups. */
  readonly samlGroupsAttribute: string;

  /** Deploy the WorkSpaces Secure Browser portal (needs `samlMetadataUrl`). */
  readonly secureBrowser: boolean;

  /** AD groups whose members administer the hub (every lab): its `westtek-admins`. */
  readonly hubAdminAdGroups?: string[];

  /** E-mail address subscribed to the alerts topic (optional). */
  readonly alarmEmail?: string;

  /**
   * The Bedrock foundation models West Tek's agents may converse with: the one list of
   * allowed models (the IAM policies and the servers' settings come from it; the first is
   * the default). Empty: the agents answer offline (retrieval and deterministic tools).
   */
  readonly bedrockModelIds: string[];
  /** Create one Bedrock knowledge base per lab (S3 Vectors storage). */
  readonly bedrockKnowledgeBases: boolean;
  /** Embedding model of the knowledge bases. */
  readonly bedrockEmbeddingModelId: string;

  /** Region of the snapshot bucket's replica (optional; enables cross-region replication). */
  readonly replicaRegion?: string;

  /** Keep data (buckets, file system, database, keys) when the stack is deleted. */
  readonly retainData: boolean;
  /** Protect the database and load balancer from deletion. */
  readonly deletionProtection: boolean;
  /** Days CloudWatch keeps logs. */
  readonly logRetentionDays: number;
}

/**
 * Most labs one deployment holds: the snapshot bucket's policy carries a statement per lab,
 * and S3 bucket policies are limited to 20 KB (a test checks the worst case fits).
 */
export const MAX_LABS = 35;

/** Values IT must replace before a real deployment (the example values of cdk.json). */
export const EXAMPLE_MARKERS = ['example.org', '123456789012'];

const COMMON = {
  region: 'us-east-1',
  labs: [] as ILabConfig[],
  allowedCidrs: ['0.0.0.0/0'],
  internetFacing: true,
  imageTag: IMAGE_TAG,
  notebookTaskFamily: 'westtek-notebook',
  samlGroupsAttribute: 'http://schemas.xmlsoap.org/claims/Group',
  bedrockModelIds: ['anthropic.claude-3-5-haiku-20241022-v1:0'],
  bedrockEmbeddingModelId: 'amazon.titan-embed-text-v2:0'
};

/** Built-in defaults per stage; the context overrides any of them. */
export const STAGE_DEFAULTS: Record<
  StageName,
  Omit<IStageConfig, 'hubDomainName' | 'certificateArn' | 'cognitoDomainPrefix'>
> = {
  dev: {
    ...COMMON,
    stage: 'dev',
    natGateways: 1,
    hubCpu: 512,
    hubMemoryMiB: 1024,
    databaseInstanceType: 't4g.micro',
    databaseMultiAz: false,
    databaseBackupDays: 1,
    secureBrowser: false,
    bedrockKnowledgeBases: false,
    retainData: false,
    deletionProtection: false,
    logRetentionDays: 14
  },
  prod: {
    ...COMMON,
    stage: 'prod',
    natGateways: 2,
    hubCpu: 1024,
    hubMemoryMiB: 2048,
    databaseInstanceType: 't4g.medium',
    databaseMultiAz: true,
    databaseBackupDays: 14,
    secureBrowser: true,
    bedrockKnowledgeBases: true,
    retainData: true,
    deletionProtection: true,
    logRetentionDays: 365
  }
};

/** Reads context values: `tryGetContext` of a CDK App or any object with the same shape. */
export interface IContextSource {
  tryGetContext(key: string): unknown;
}

/** A configuration problem, reported before any stack is built. */
export class ConfigError extends Error {}

/**
 * The configuration of the stage named by the `stage` context value (default `dev`):
 * the stage's defaults, overridden by the `westtek:{stage}` context object.
 */
export function loadStageConfig(context: IContextSource, stageOverride?: string): IStageConfig {
  const stage = stageOverride ?? (context.tryGetContext('stage') as string | undefined) ?? 'dev';
  if (stage !== 'dev' && stage !== 'prod') {
    throw new ConfigError(`context "stage" must be "dev" or "prod", not ${JSON.stringify(stage)}`);
  }
  const overrides = context.tryGetContext(`westtek:${stage}`) ?? {};
  if (typeof overrides !== 'object' || Array.isArray(overrides)) {
    throw new ConfigError(`context "westtek:${stage}" must be an object`);
  }
  const merged = { ...STAGE_DEFAULTS[stage], ...(overrides as Partial<IStageConfig>), stage };
  return validate(merged as IStageConfig);
}

function validate(config: IStageConfig): IStageConfig {
  const where = `context "westtek:${config.stage}"`;
  for (const key of ['hubDomainName', 'certificateArn', 'cognitoDomainPrefix'] as const) {
    if (typeof config[key] !== 'string' || config[key].length === 0) {
      throw new ConfigError(`${where} needs "${key}" (see infra/docs/deploy.md)`);
    }
  }
  if (!Array.isArray(config.labs) || config.labs.length === 0) {
    throw new ConfigError(`${where} needs "labs": at least one {"id": "...", "adGroup": "..."}`);
  }
  if (config.labs.length > MAX_LABS) {
    throw new ConfigError(
      `${where}: at most ${MAX_LABS} labs fit the snapshot bucket's policy; split them across deployments`
    );
  }
  const seen = new Set<string>();
  for (const lab of config.labs) {
    if (!LAB_ID_PATTERN.test(lab.id ?? '')) {
      throw new ConfigError(
        `${where}: lab id ${JSON.stringify(lab.id)} must be 1-48 lowercase letters, digits or dashes`
      );
    }
    if (seen.has(lab.id)) {
      throw new ConfigError(`${where}: lab id ${JSON.stringify(lab.id)} is listed twice`);
    }
    seen.add(lab.id);
  }
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(config.cognitoDomainPrefix)) {
    throw new ConfigError(
      `${where}: "cognitoDomainPrefix" must be lowercase letters, digits and dashes`
    );
  }
  if (!/^arn:aws[a-z-]*:acm:/.test(config.certificateArn)) {
    throw new ConfigError(`${where}: "certificateArn" must be an ACM certificate ARN`);
  }
  if (config.secureBrowser && !config.samlMetadataUrl) {
    throw new ConfigError(
      `${where}: "secureBrowser" needs "samlMetadataUrl" (the portal signs users in through AD)`
    );
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(config.region)) {
    throw new ConfigError(`${where}: "region" must be an AWS region such as "us-east-1"`);
  }
  if (config.replicaRegion === config.region) {
    throw new ConfigError(`${where}: "replicaRegion" must differ from "region"`);
  }
  if (config.natGateways < 1) {
    throw new ConfigError(
      `${where}: "natGateways" must be at least 1 (tasks pull images and call AWS)`
    );
  }
  if ('bedrockAgents' in config) {
    throw new ConfigError(
      `${where}: "bedrockAgents" was removed (the agents run inside West Tek, on "bedrockModelIds"); delete it`
    );
  }
  for (const lab of config.labs) {
    for (const phone of lab.alertSms ?? []) {
      if (!/^\+[1-9]\d{6,14}$/.test(phone)) {
        throw new ConfigError(
          `${where}: lab ${lab.id} alertSms ${JSON.stringify(phone)} is not an E.164 number such as "+15555550100"`
        );
      }
    }
    for (const email of lab.alertEmails ?? []) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
        throw new ConfigError(
          `${where}: lab ${lab.id} alertEmails ${JSON.stringify(email)} is not an e-mail address`
        );
      }
    }
  }
  return config;
}

/** True when a value still holds one of cdk.json's example placeholders. */
export function isExampleValue(value: string | undefined): boolean {
  return value !== undefined && EXAMPLE_MARKERS.some(marker => value.includes(marker));
}
