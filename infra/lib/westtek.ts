/**
 * The West Tek deployment of one stage: every stack, wired together, tagged, and checked by
 * cdk-nag's AwsSolutions pack. `bin/westtek.ts` builds it for the stage the context names;
 * the tests build both stages.
 */
import { Annotations, App, Stack, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Construct } from 'constructs';

import { AccessStack } from './access-stack';
import { AiStack } from './ai-stack';
import { AlertsStack } from './alerts-stack';
import { ComputeStack } from './compute-stack';
import { IStageConfig, isExampleValue } from './config';
import { DataStack } from './data-stack';
import { IdentityStack } from './identity-stack';
import { NetworkStack } from './network-stack';
import { ReplicaStack } from './replica-stack';
import { StorageStack } from './storage-stack';
import { TAG_KEYS } from './names';

/** The stacks of one stage. */
export interface IWestTekStacks {
  /** VPC and security groups. */
  readonly network: NetworkStack;
  /** Buckets, file system, keys, image repositories. */
  readonly storage: StorageStack;
  /** Snapshot replica (with `replicaRegion`). */
  readonly replica?: ReplicaStack;
  /** PostgreSQL. */
  readonly data: DataStack;
  /** Cognito and AD federation. */
  readonly identity: IdentityStack;
  /** Bedrock agents and knowledge bases (when enabled). */
  readonly ai?: AiStack;
  /** Cluster, hub, notebook tasks and roles. */
  readonly compute: ComputeStack;
  /** Drift events and alarms. */
  readonly alerts: AlertsStack;
  /** Secure Browser portal (when enabled). */
  readonly access?: AccessStack;
}

/** The CloudFormation stack name of one of a stage's stacks, e.g. `westtek-prod-compute`. */
export function stackName(stage: string, part: string): string {
  return `westtek-${stage}-${part}`;
}

/**
 * Build every stack of a stage in `scope` (an App). Stacks name their region (from the
 * context) but not their account: they deploy to the account of the credentials `cdk deploy`
 * runs with, and synthesize offline without any.
 */
export function buildWestTek(scope: Construct, config: IStageConfig): IWestTekStacks {
  const name = (part: string) => stackName(config.stage, part);
  const description = (what: string) => `West Tek ${config.stage}: ${what}`;
  const termination = config.deletionProtection;
  const env = { region: config.region };

  const network = new NetworkStack(scope, name('network'), {
    config,
    env,
    description: description('VPC, endpoints and security groups'),
    terminationProtection: termination
  });
  const common = { config, vpc: network.vpc, securityGroups: network.securityGroups };

  let replica: ReplicaStack | undefined;
  if (config.replicaRegion) {
    replica = new ReplicaStack(scope, name('replica'), {
      config,
      env: { region: config.replicaRegion },
      description: description('snapshot replica bucket'),
      terminationProtection: termination
    });
  }
  const storage = new StorageStack(scope, name('storage'), {
    ...common,
    env,
    description: description('snapshot bucket, home file system, keys, image repositories'),
    terminationProtection: termination
  });
  if (replica) {
    storage.addStackDependency(replica, 'S3 replication needs the replica bucket first');
  }
  const data = new DataStack(scope, name('data'), {
    ...common,
    env,
    description: description('PostgreSQL'),
    terminationProtection: termination
  });
  const identity = new IdentityStack(scope, name('identity'), {
    config,
    env,
    description: description('Cognito user pool, AD federation, lab groups'),
    terminationProtection: termination
  });
  let ai: AiStack | undefined;
  if (config.bedrockKnowledgeBases) {
    ai = new AiStack(scope, name('ai'), {
      config,
      snapshotKey: storage.snapshotKey,
      env,
      description: description('Bedrock knowledge bases, one per lab'),
      terminationProtection: termination
    });
    // The bucket is named, not referenced: order the deployment explicitly.
    ai.addStackDependency(storage);
  }
  const compute = new ComputeStack(scope, name('compute'), {
    ...common,
    snapshotKey: storage.snapshotKey,
    logsBucket: storage.logsBucket,
    fileSystem: storage.fileSystem,
    database: data.database,
    databaseSecret: data.secret,
    userPool: identity.userPool,
    hubClient: identity.hubClient,
    oauthBaseUrl: identity.domain.baseUrl(),
    hubRepository: storage.hubRepository,
    notebookRepository: storage.notebookRepository,
    knowledgeBases: ai?.knowledgeBases,
    env,
    description: description('ECS cluster, hub service, load balancer, notebook tasks'),
    terminationProtection: termination
  });
  const alerts = new AlertsStack(scope, name('alerts'), {
    config,
    publishers: [compute.hubTaskRole, ...Object.values(compute.notebookRoles)],
    labPublishers: compute.notebookRoles,
    hubService: compute.hubService,
    loadBalancer: compute.loadBalancer,
    hubTargetGroup: compute.hubTargetGroup,
    database: data.database,
    env,
    description: description('drift events, alerts topic, alarms'),
    terminationProtection: termination
  });
  compute.addStackDependency(storage, 'the compute stack names the snapshot bucket');
  let access: AccessStack | undefined;
  if (config.secureBrowser) {
    access = new AccessStack(scope, name('access'), {
      ...common,
      cognitoHost: `${config.cognitoDomainPrefix}.auth.${config.region}.amazoncognito.com`,
      env,
      description: description('WorkSpaces Secure Browser portal'),
      terminationProtection: termination
    });
  }

  Tags.of(scope).add('project', 'westtek');
  Tags.of(scope).add(TAG_KEYS.stage, config.stage);

  for (const [key, value] of Object.entries({
    hubDomainName: config.hubDomainName,
    certificateArn: config.certificateArn,
    samlMetadataUrl: config.samlMetadataUrl
  })) {
    if (isExampleValue(value)) {
      Annotations.of(network).addWarningV2(
        'westtek:example-context',
        `westtek:${config.stage}.${key} is still cdk.json's example value: set it before deploying (infra/docs/deploy.md)`
      );
    }
  }
  return { network, storage, replica, data, identity, ai, compute, alerts, access };
}

/** Run cdk-nag's AwsSolutions pack on everything in the app at synthesis. */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
}

/** Every stack of a stage, in deployment order. */
export function allStacks(stacks: IWestTekStacks): Stack[] {
  return [
    stacks.network,
    stacks.replica,
    stacks.storage,
    stacks.data,
    stacks.identity,
    stacks.ai,
    stacks.compute,
    stacks.alerts,
    stacks.access
  ].filter((stack): stack is NonNullable<typeof stack> => stack !== undefined);
}
