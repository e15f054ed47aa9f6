/**
 * Compute: the ECS cluster; the hub (configurable-http-proxy + JupyterHub) as a Fargate
 * service behind an HTTPS load balancer; the notebook task definition family the spawner
 * registers per-researcher revisions in; one notebook task role per lab, confined to the
 * lab's `labs/{lab_id}/` prefix; and the hub's least-privilege task role.
 *
 * The hub container receives every value the spawner and hub_config need as `WESTTEK_*`
 * environment variables (see `hubEnvironment`); the same values are stack outputs.
 */
import { CfnOutput, Duration, Fn, Stack, StackProps, Tags, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { ILabKnowledgeBase, foundationModelArn } from './ai-stack';
import { DATABASE_NAME } from './data-stack';
import {
  HUB_API_PORT,
  LAB_MEMORY_SCOPE,
  NOTEBOOK_CONTAINER,
  NOTEBOOK_PORT,
  NOTEBOOK_ROLE_TAG,
  PROXY_PORT,
  TAG_KEYS,
  alertTopicName,
  auditBucketName,
  labPrefix,
  labsSetting,
  snapshotBucketName
} from './names';
import { ISecurityGroups, SUBNETS } from './network-stack';
import { acknowledgeWildcard, nagArn, nagAuditObjectArn, nagSnapshotObjectArn } from './nag';
import { dataRemovalPolicy } from './storage-stack';

/** Image of configurable-http-proxy (the version the local demo runs). */
export const PROXY_IMAGE = 'quay.io/jupyterhub/configurable-http-proxy:5.3.0';
/** Port of configurable-http-proxy's REST API, on localhost inside the hub task. */
export const PROXY_API_PORT = 8001;
/** Where the researcher's EFS access point is mounted in the notebook container. */
export const NOTEBOOK_HOME = '/home/jovyan';
/** Name of the home volume in the notebook task definition (the spawner sets its access point). */
export const HOME_VOLUME = 'home';

/** Properties of the compute stack. */
export interface IComputeStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
  /** The VPC. */
  readonly vpc: ec2.IVpc;
  /** The deployment's security groups. */
  readonly securityGroups: ISecurityGroups;
  /** The snapshot bucket's key. */
  readonly snapshotKey: kms.IKey;
  /** Bucket for the load balancer's access logs. */
  readonly logsBucket: s3.IBucket;
  /** Researchers' home directories. */
  readonly fileSystem: efs.IFileSystem;
  /** The database. */
  readonly database: rds.IDatabaseInstance;
  /** The database credentials. */
  readonly databaseSecret: secretsmanager.ISecret;
  /** The user pool. */
  readonly userPool: cognito.IUserPool;
  /** The hub's app client. */
  readonly hubClient: cognito.IUserPoolClient;
  /** Hosted-UI base URL of the user pool (`https://{prefix}.auth.{region}.amazoncognito.com`). */
  readonly oauthBaseUrl: string;
  /** The hub image repository. */
  readonly hubRepository: ecr.IRepository;
  /** The notebook image repository. */
  readonly notebookRepository: ecr.IRepository;
  /** Each lab's knowledge base (when the AI stack has them). */
  readonly knowledgeBases?: Record<string, ILabKnowledgeBase>;
}

/** Name of the ECS cluster of a stage. */
export function clusterName(stage: string): string {
  return `westtek-${stage}`;
}

/** Name of the custom EventBridge bus of a stage (drift events). */
export function eventBusName(stage: string): string {
  return `westtek-${stage}`;
}

/** The cluster, the hub service and load balancer, the notebook task definition and roles. */
export class ComputeStack extends Stack {
  /** The ECS cluster of the hub and every notebook task. */
  readonly cluster: ecs.Cluster;
  /** The hub's task role. */
  readonly hubTaskRole: iam.Role;
  /** Notebook task roles by lab id. */
  readonly notebookRoles: Record<string, iam.Role> = {};
  /** The notebook tasks' execution role (image pull, logs). */
  readonly notebookExecutionRole: iam.Role;
  /** The notebook task definition (the family's template revision). */
  readonly notebookTaskDefinition: ecs.FargateTaskDefinition;
  /** The hub service. */
  readonly hubService: ecs.FargateService;
  /** The hub's load balancer. */
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** The hub's target group (proxy port). */
  readonly hubTargetGroup: elbv2.ApplicationTargetGroup;
  /** Environment variables of the hub container: the contract with hub_config/aws.py. */
  readonly hubEnvironment: Record<string, string>;
  private readonly stage: string;

  constructor(scope: Construct, id: string, props: IComputeStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.stage = config.stage;
    const retention = config.logRetentionDays;
    // By name rather than by reference: policies then read `westtek-{stage}-snapshots-…`.
    const snapshotBucket = s3.Bucket.fromBucketName(
      this,
      'SnapshotBucket',
      snapshotBucketName(config.stage, this.account, this.region)
    );
    const auditBucket = s3.Bucket.fromBucketName(
      this,
      'AuditBucket',
      auditBucketName(config.stage, this.account, this.region)
    );
    const grants = { ...props, snapshotBucket, auditBucket };

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      clusterName: clusterName(config.stage),
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENHANCED
    });
    const namespace = this.cluster.addDefaultCloudMapNamespace({
      name: `westtek-${config.stage}.local`,
      vpc: props.vpc
    });

    const hubLogs = new logs.LogGroup(this, 'HubLogs', {
      logGroupName: `/westtek/${config.stage}/hub`,
      retention,
      removalPolicy: dataRemovalPolicy(config)
    });
    const notebookLogs = new logs.LogGroup(this, 'NotebookLogs', {
      logGroupName: `/westtek/${config.stage}/notebooks`,
      retention,
      removalPolicy: dataRemovalPolicy(config)
    });

    // --- notebooks -------------------------------------------------------------------------
    this.notebookExecutionRole = new iam.Role(this, 'NotebookExecutionRole', {
      description: 'West Tek notebook tasks: pull the notebook image, write logs',
      assumedBy: ecsTasksPrincipal(this)
    });
    for (const lab of config.labs) {
      this.notebookRoles[lab.id] = this.makeNotebookRole(lab.id, grants);
    }

    // The template revision: the spawner registers a revision of this family per researcher
    // and profile, adding the researcher's access point, the lab's role and the profile's size.
    // It runs with no AWS permissions of its own (a role with no policies).
    const templateRole = new iam.Role(this, 'NotebookTemplateRole', {
      description:
        'West Tek notebook template revision: no permissions (the spawner sets a lab role)',
      assumedBy: ecsTasksPrincipal(this)
    });
    this.notebookTaskDefinition = new ecs.FargateTaskDefinition(this, 'NotebookTask', {
      family: config.notebookTaskFamily,
      cpu: 1024,
      memoryLimitMiB: 4096,
      executionRole: this.notebookExecutionRole,
      taskRole: templateRole,
      volumes: [
        {
          name: HOME_VOLUME,
          efsVolumeConfiguration: {
            fileSystemId: props.fileSystem.fileSystemId,
            transitEncryption: 'ENABLED',
            authorizationConfig: { iam: 'ENABLED' }
          }
        }
      ]
    });
    const notebookImage = config.notebookImage
      ? ecs.ContainerImage.fromRegistry(config.notebookImage)
      : ecs.ContainerImage.fromEcrRepository(props.notebookRepository, config.imageTag);
    const notebook = this.notebookTaskDefinition.addContainer(NOTEBOOK_CONTAINER, {
      image: notebookImage,
      essential: true,
      memoryReservationMiB: 2048,
      portMappings: [{ containerPort: NOTEBOOK_PORT }],
      logging: ecs.LogDriver.awsLogs({ logGroup: notebookLogs, streamPrefix: 'notebook' })
    });
    notebook.addMountPoints({
      containerPath: NOTEBOOK_HOME,
      sourceVolume: HOME_VOLUME,
      readOnly: false
    });
    if (!config.notebookImage) {
      props.notebookRepository.grantPull(this.notebookExecutionRole);
    }

    // --- hub -------------------------------------------------------------------------------
    this.hubTaskRole = new iam.Role(this, 'HubTaskRole', {
      description: 'West Tek hub: run notebook tasks in its cluster, read snapshots, call Bedrock',
      assumedBy: ecsTasksPrincipal(this)
    });
    Tags.of(this.hubTaskRole).add(TAG_KEYS.role, 'hub');
    const hubExecutionRole = new iam.Role(this, 'HubExecutionRole', {
      description: 'West Tek hub task: pull images, write logs, read the proxy token',
      assumedBy: ecsTasksPrincipal(this)
    });

    const proxyToken = new secretsmanager.Secret(this, 'ProxyAuthToken', {
      description: 'configurable-http-proxy API token shared by the proxy and JupyterHub',
      generateSecretString: { passwordLength: 64, excludePunctuation: true }
    });
    const hubSecret = new secretsmanager.Secret(this, 'HubCryptSecret', {
      description: 'Seed of JUPYTERHUB_CRYPT_KEY and the cookie secret (hub_config derives both)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true }
    });
    for (const secret of [proxyToken, hubSecret]) {
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Rotating it would invalidate every session and encrypted auth state at once; it is replaced by redeploying with a new secret, in a maintenance window.'
      });
    }

    const hubUrl = `https://${config.hubDomainName}`;
    const hubConnectUrl = `http://hub.${namespace.namespaceName}:${HUB_API_PORT}`;
    const notebookSubnets = props.vpc.selectSubnets({ subnetGroupName: SUBNETS.app }).subnetIds;
    this.hubEnvironment = {
      WESTTEK_STAGE: config.stage,
      WESTTEK_HUB_URL: hubUrl,
      WESTTEK_HUB_CONNECT_URL: hubConnectUrl,
      WESTTEK_ECS_CLUSTER: this.cluster.clusterName,
      WESTTEK_NOTEBOOK_TASK_FAMILY: config.notebookTaskFamily,
      WESTTEK_NOTEBOOK_TASK_DEFINITION_ARN: this.notebookTaskDefinition.taskDefinitionArn,
      WESTTEK_NOTEBOOK_CONTAINER: NOTEBOOK_CONTAINER,
      WESTTEK_NOTEBOOK_EXECUTION_ROLE_ARN: this.notebookExecutionRole.roleArn,
      WESTTEK_NOTEBOOK_TASK_ROLE_ARNS: this.toJsonString(
        Object.fromEntries(
          Object.entries(this.notebookRoles).map(([lab, role]) => [lab, role.roleArn])
        )
      ),
      WESTTEK_NOTEBOOK_SUBNETS: Fn.join(',', notebookSubnets),
      WESTTEK_NOTEBOOK_SECURITY_GROUPS: props.securityGroups.notebook.securityGroupId,
      WESTTEK_NOTEBOOK_LOG_GROUP: notebookLogs.logGroupName,
      WESTTEK_EFS_FILE_SYSTEM_ID: props.fileSystem.fileSystemId,
      WESTTEK_SNAPSHOT_BUCKET: snapshotBucket.bucketName,
      WESTTEK_AUDIT_BUCKET: auditBucket.bucketName,
      // the hub service's default locks each audit head for seven years; a stage whose
      // data goes with its stacks locks them for a day, so its audit bucket can go too
      ...(config.retainData ? {} : { WESTTEK_AUDIT_RETENTION_DAYS: '1' }),
      WESTTEK_SNAPSHOT_KMS_KEY_ARN: props.snapshotKey.keyArn,
      WESTTEK_DB_HOST: props.database.dbInstanceEndpointAddress,
      WESTTEK_DB_PORT: props.database.dbInstanceEndpointPort,
      WESTTEK_DB_NAME: DATABASE_NAME,
      WESTTEK_DB_SECRET_ARN: props.databaseSecret.secretArn,
      WESTTEK_COGNITO_USER_POOL_ID: props.userPool.userPoolId,
      WESTTEK_COGNITO_CLIENT_ID: props.hubClient.userPoolClientId,
      WESTTEK_OAUTH_AUTHORIZE_URL: `${props.oauthBaseUrl}/oauth2/authorize`,
      WESTTEK_OAUTH_TOKEN_URL: `${props.oauthBaseUrl}/oauth2/token`,
      WESTTEK_OAUTH_CALLBACK_URL: `${hubUrl}/hub/oauth_callback`,
      WESTTEK_LABS: this.toJsonString(labsSetting(config.labs)),
      WESTTEK_HUB_ADMIN_AD_GROUPS: this.toJsonString(config.hubAdminAdGroups ?? []),
      WESTTEK_EVENT_BUS: eventBusName(config.stage),
      WESTTEK_ALERT_TOPIC_ARNS: this.toJsonString(
        Object.fromEntries(
          config.labs.map(lab => [
            lab.id,
            `arn:${this.partition}:sns:${this.region}:${this.account}:${alertTopicName(config.stage, lab.id)}`
          ])
        )
      ),
      WESTTEK_BEDROCK_MODEL_IDS: config.bedrockModelIds.join(','),
      WESTTEK_KNOWLEDGE_BASE_IDS: this.toJsonString(
        Object.fromEntries(
          Object.entries(props.knowledgeBases ?? {}).map(([lab, kb]) => [lab, kb.id])
        )
      ),
      WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS: this.toJsonString(
        Object.fromEntries(
          Object.entries(props.knowledgeBases ?? {}).map(([lab, kb]) => [lab, kb.dataSourceId])
        )
      ),
      WESTTEK_PROXY_API_URL: `http://127.0.0.1:${PROXY_API_PORT}`
    };

    const hubTask = new ecs.FargateTaskDefinition(this, 'HubTask', {
      family: `westtek-${config.stage}-hub`,
      cpu: config.hubCpu,
      memoryLimitMiB: config.hubMemoryMiB,
      taskRole: this.hubTaskRole,
      executionRole: hubExecutionRole
    });
    const hubImage = config.hubImage
      ? ecs.ContainerImage.fromRegistry(config.hubImage)
      : ecs.ContainerImage.fromEcrRepository(props.hubRepository, config.imageTag);
    hubTask.addContainer('hub', {
      image: hubImage,
      essential: true,
      command: ['jupyterhub', '-f', '/srv/westtek/hub_config/aws.py'],
      environment: this.hubEnvironment,
      secrets: {
        CONFIGPROXY_AUTH_TOKEN: ecs.Secret.fromSecretsManager(proxyToken),
        WESTTEK_HUB_SECRET: ecs.Secret.fromSecretsManager(hubSecret)
      },
      portMappings: [{ containerPort: HUB_API_PORT }],
      logging: ecs.LogDriver.awsLogs({ logGroup: hubLogs, streamPrefix: 'hub' }),
      healthCheck: {
        command: ['CMD-SHELL', `curl -fsS http://127.0.0.1:${HUB_API_PORT}/hub/health || exit 1`],
        interval: Duration.seconds(30),
        startPeriod: Duration.seconds(120)
      }
    });
    hubTask.addContainer('proxy', {
      image: ecs.ContainerImage.fromRegistry(PROXY_IMAGE),
      essential: true,
      command: [
        '--ip=0.0.0.0',
        `--port=${PROXY_PORT}`,
        '--api-ip=127.0.0.1',
        `--api-port=${PROXY_API_PORT}`,
        `--default-target=http://127.0.0.1:${HUB_API_PORT}`,
        `--error-target=http://127.0.0.1:${HUB_API_PORT}/hub/error`
      ],
      secrets: { CONFIGPROXY_AUTH_TOKEN: ecs.Secret.fromSecretsManager(proxyToken) },
      portMappings: [{ containerPort: PROXY_PORT }],
      logging: ecs.LogDriver.awsLogs({ logGroup: hubLogs, streamPrefix: 'proxy' })
    });
    if (!config.hubImage) {
      props.hubRepository.grantPull(hubExecutionRole);
    }
    for (const role of [hubExecutionRole, this.notebookExecutionRole]) {
      acknowledgeWildcard(
        role,
        '*',
        'ecr:GetAuthorizationToken has no resource-level permissions; image pulls themselves are limited to our repositories.'
      );
    }
    Validations.of(hubTask).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The WESTTEK_* variables are resource names and URLs, not secrets; the secrets (proxy token, hub secret) come from Secrets Manager and the database password is read by the hub at start.'
    });

    this.hubService = new ecs.FargateService(this, 'HubService', {
      cluster: this.cluster,
      taskDefinition: hubTask,
      serviceName: 'hub',
      desiredCount: 1,
      // JupyterHub is a single process over one database: never two at a time.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      vpcSubnets: { subnetGroupName: SUBNETS.app },
      securityGroups: [props.securityGroups.hub],
      assignPublicIp: false,
      cloudMapOptions: { name: 'hub', cloudMapNamespace: namespace },
      healthCheckGracePeriod: Duration.minutes(3)
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'HubLoadBalancer', {
      vpc: props.vpc,
      internetFacing: config.internetFacing,
      vpcSubnets: { subnetGroupName: config.internetFacing ? SUBNETS.public : SUBNETS.app },
      securityGroup: props.securityGroups.alb,
      dropInvalidHeaderFields: true,
      deletionProtection: config.deletionProtection,
      idleTimeout: Duration.seconds(3600) // notebook WebSockets stay open for long
    });
    this.loadBalancer.logAccessLogs(props.logsBucket, `alb/${config.stage}`);
    const listener = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [
        acm.Certificate.fromCertificateArn(this, 'Certificate', config.certificateArn)
      ],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false
    });
    this.hubTargetGroup = listener.addTargets('Hub', {
      port: PROXY_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [
        this.hubService.loadBalancerTarget({ containerName: 'proxy', containerPort: PROXY_PORT })
      ],
      healthCheck: { path: '/hub/health', healthyHttpCodes: '200', interval: Duration.seconds(30) },
      deregistrationDelay: Duration.seconds(30)
    });

    this.grantHub(grants);
    this.grantBedrock(props);

    const outputs: Record<string, string> = {
      HubUrl: hubUrl,
      HubConnectUrl: hubConnectUrl,
      LoadBalancerDnsName: this.loadBalancer.loadBalancerDnsName,
      ClusterName: this.cluster.clusterName,
      ClusterArn: this.cluster.clusterArn,
      NotebookTaskFamily: config.notebookTaskFamily,
      NotebookTaskDefinitionArn: this.notebookTaskDefinition.taskDefinitionArn,
      NotebookExecutionRoleArn: this.notebookExecutionRole.roleArn,
      NotebookTaskRoleArns: this.hubEnvironment.WESTTEK_NOTEBOOK_TASK_ROLE_ARNS,
      AlertTopicArns: this.hubEnvironment.WESTTEK_ALERT_TOPIC_ARNS,
      NotebookSubnetIds: this.hubEnvironment.WESTTEK_NOTEBOOK_SUBNETS,
      NotebookSecurityGroupId: props.securityGroups.notebook.securityGroupId,
      NotebookLogGroup: notebookLogs.logGroupName,
      FileSystemId: props.fileSystem.fileSystemId,
      SnapshotBucketName: snapshotBucket.bucketName,
      AuditBucketName: auditBucket.bucketName,
      SnapshotKeyArn: props.snapshotKey.keyArn,
      DatabaseHost: props.database.dbInstanceEndpointAddress,
      DatabasePort: props.database.dbInstanceEndpointPort,
      DatabaseSecretArn: props.databaseSecret.secretArn,
      EventBusName: eventBusName(config.stage)
    };
    for (const [name, value] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value });
    }
  }

  /** A lab's notebook task role: its own prefix of the snapshot bucket, EFS through access points. */
  private makeNotebookRole(labId: string, props: IGrantProps): iam.Role {
    const role = new iam.Role(this, `NotebookRole-${labId}`, {
      description: `West Tek notebook tasks of lab ${labId}: only labs/${labId}/ in the snapshot bucket`,
      assumedBy: ecsTasksPrincipal(this),
      path: '/westtek/notebook/'
    });
    Tags.of(role).add(TAG_KEYS.labId, labId);
    Tags.of(role).add(TAG_KEYS.role, NOTEBOOK_ROLE_TAG);
    for (const statement of notebookLabStatements(labId, props)) {
      role.addToPolicy(statement);
    }
    acknowledgeWildcard(
      role,
      nagSnapshotObjectArn(this, this.stage, `${labPrefix(labId)}*`),
      `Snapshots are content-addressed objects under the lab's own prefix labs/${labId}/; the wildcard never leaves it.`
    );
    return role;
  }

  private grantHub(props: IGrantProps): void {
    const { config } = props;
    const role = this.hubTaskRole;
    for (const statement of hubStatements({
      stack: this,
      cluster: this.cluster,
      clusterName: clusterName(config.stage),
      family: config.notebookTaskFamily,
      passRoles: [...Object.values(this.notebookRoles), this.notebookExecutionRole],
      fileSystem: props.fileSystem,
      snapshotBucket: props.snapshotBucket,
      snapshotKey: props.snapshotKey,
      auditBucket: props.auditBucket,
      userPool: props.userPool,
      knowledgeBases: Object.values(props.knowledgeBases ?? {})
    })) {
      role.addToPolicy(statement);
    }
    props.databaseSecret.grantRead(role);
    acknowledgeWildcard(
      role,
      '*',
      'ecs:RegisterTaskDefinition, ecs:DescribeTaskDefinition, ec2:DescribeSubnets and ec2:DescribeSecurityGroups support no resource-level permissions; running a registered revision is still confined to the family, the cluster and the notebook roles.'
    );
    acknowledgeWildcard(
      role,
      nagArn(this, 'ecs', `task-definition/${config.notebookTaskFamily}:*`),
      'Every revision of the notebook family (one per researcher and profile), nothing else.'
    );
    acknowledgeWildcard(
      role,
      nagArn(this, 'ecs', `task/${clusterName(config.stage)}/*`),
      'Notebook tasks are created at spawn time; ecs:cluster pins the cluster.'
    );
    acknowledgeWildcard(
      role,
      nagArn(this, 'elasticfilesystem', 'access-point/*'),
      'Per-researcher access points are created at spawn time, with lab and researcher tags required.'
    );
    acknowledgeWildcard(
      role,
      nagSnapshotObjectArn(this, this.stage, 'labs/*'),
      "The hub service reads snapshot manifests of every lab for the admin panel, and adds a shared snapshot's write-once objects to the recipient lab's store."
    );
    acknowledgeWildcard(
      role,
      nagSnapshotObjectArn(this, this.stage, 'labs/*/data/*'),
      "A year on, a shared snapshot's packs are in Deep Archive: the hub service asks S3 to restore the packs of the snapshot it copies (RestoreObject only, packs only)."
    );
    acknowledgeWildcard(
      role,
      nagSnapshotObjectArn(this, this.stage, 'labs/*/locks/*'),
      "The hub service releases the lock objects of its own copies into a lab's store; nothing else is deleted."
    );
    acknowledgeWildcard(
      role,
      nagSnapshotObjectArn(this, this.stage, `labs/*/kb/env/${LAB_MEMORY_SCOPE}/*`),
      "Each lab's memory writes and replaces its knowledge-base documents under its own scope of the lab's prefix, never a server's beside them."
    );
    acknowledgeWildcard(
      role,
      nagAuditObjectArn(this, this.stage, 'audit/*'),
      'The hub service adds one locked object per head of its audit chain and reads them back; it cannot delete or unlock any.'
    );
  }

  private grantBedrock(props: IComputeStackProps): void {
    const modelArns = props.config.bedrockModelIds.map(model => foundationModelArn(this, model));
    // West Tek's agents converse with these models (Converse needs bedrock:InvokeModel)
    const invoke = new iam.PolicyStatement({
      sid: 'InvokeModels',
      actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
      resources: modelArns
    });
    if (modelArns.length) {
      for (const role of [this.hubTaskRole, ...Object.values(this.notebookRoles)]) {
        role.addToPolicy(invoke);
      }
    }
    for (const [labId, kb] of Object.entries(props.knowledgeBases ?? {})) {
      this.notebookRoles[labId]?.addToPolicy(
        new iam.PolicyStatement({
          sid: 'RetrieveOwnLab',
          actions: ['bedrock:Retrieve'],
          resources: [kb.arn]
        })
      );
      // The server writes its lab's documents under labs/{lab}/kb/ (ReadWriteOwnLab) after
      // each snapshot and then starts its own knowledge base's ingestion.
      this.notebookRoles[labId]?.addToPolicy(
        new iam.PolicyStatement({
          sid: 'IngestOwnLab',
          actions: ['bedrock:StartIngestionJob', 'bedrock:GetIngestionJob'],
          resources: [kb.arn]
        })
      );
    }
  }
}

/** Inputs of the compute stack's grants: its props plus the snapshot bucket (by name). */
type IGrantProps = IComputeStackProps & {
  readonly snapshotBucket: s3.IBucket;
  readonly auditBucket: s3.IBucket;
};

/** Trust policy of every task role: ECS tasks of this account only (no confused deputy). */
function ecsTasksPrincipal(stack: Stack): iam.IPrincipal {
  return new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
    conditions: {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:ecs:${stack.region}:${stack.account}:*` }
    }
  });
}

/**
 * What a lab's notebook task may do: list, read and write its lab's prefix, use the snapshot
 * key through S3 (or directly, with the lab as encryption context), mount EFS through an
 * access point.
 */
export function notebookLabStatements(
  labId: string,
  props: { snapshotBucket: s3.IBucket; snapshotKey: kms.IKey; fileSystem: efs.IFileSystem }
): iam.PolicyStatement[] {
  const stack = Stack.of(props.fileSystem);
  const prefix = labPrefix(labId);
  return [
    new iam.PolicyStatement({
      sid: 'ListOwnLab',
      actions: ['s3:ListBucket', 's3:ListBucketVersions', 's3:ListBucketMultipartUploads'],
      resources: [props.snapshotBucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': `${prefix}*` } }
    }),
    new iam.PolicyStatement({
      sid: 'ReadWriteOwnLab',
      actions: [
        's3:GetObject',
        's3:GetObjectVersion',
        's3:GetObjectAttributes',
        's3:PutObject',
        's3:DeleteObject',
        's3:RestoreObject',
        's3:AbortMultipartUpload',
        's3:ListMultipartUploadParts'
      ],
      resources: [props.snapshotBucket.arnForObjects(`${prefix}*`)]
    }),
    new iam.PolicyStatement({
      sid: 'SnapshotKeyThroughS3',
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: [props.snapshotKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } }
    }),
    new iam.PolicyStatement({
      sid: 'SnapshotKeyForOwnLabDataKeys',
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: [props.snapshotKey.keyArn],
      conditions: { StringEquals: { [`kms:EncryptionContext:${TAG_KEYS.labId}`]: labId } }
    }),
    new iam.PolicyStatement({
      sid: 'MountHomeThroughAccessPoint',
      actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
      resources: [props.fileSystem.fileSystemArn],
      conditions: {
        Bool: { 'elasticfilesystem:AccessedViaMountTarget': 'true' },
        ArnLike: {
          'elasticfilesystem:AccessPointArn': `arn:${stack.partition}:elasticfilesystem:${stack.region}:${stack.account}:access-point/*`
        }
      }
    })
  ];
}

/** Inputs of `hubStatements`. */
export interface IHubGrants {
  /** The stack the statements are for (its account, region and partition). */
  readonly stack: Stack;
  /** The cluster notebook tasks run in. */
  readonly cluster: ecs.ICluster;
  /** The cluster's name, as a literal (task ARNs embed it). */
  readonly clusterName: string;
  /** The notebook task definition family. */
  readonly family: string;
  /** The only roles the hub may pass (to ECS tasks). */
  readonly passRoles: iam.IRole[];
  /** The home file system access points are created on. */
  readonly fileSystem: efs.IFileSystem;
  /** The snapshot bucket (read only). */
  readonly snapshotBucket: s3.IBucket;
  /** Its key. */
  readonly snapshotKey: kms.IKey;
  /** The audit anchor bucket (Object Lock), where the hub service adds its chain's heads. */
  readonly auditBucket: s3.IBucket;
  /** The user pool whose hub client the hub reads. */
  readonly userPool: cognito.IUserPool;
  /** Knowledge bases the hub starts ingestion of. */
  readonly knowledgeBases: ILabKnowledgeBase[];
}

/**
 * The hub's permissions: run, stop and describe notebook tasks only in its cluster and only
 * of the notebook family; pass only the notebook roles; create tagged EFS access points on
 * the home file system; read (never write) snapshots of every lab; read its OAuth client.
 */
export function hubStatements(grants: IHubGrants): iam.PolicyStatement[] {
  const { stack, cluster } = grants;
  const arn = (service: string, resource: string) =>
    `arn:${stack.partition}:${service}:${stack.region}:${stack.account}:${resource}`;
  const inCluster = { ArnEquals: { 'ecs:cluster': cluster.clusterArn } };
  const familyArn = arn('ecs', `task-definition/${grants.family}:*`);
  const tasksArn = arn('ecs', `task/${grants.clusterName}/*`);
  const accessPoints = arn('elasticfilesystem', 'access-point/*');
  const statements = [
    new iam.PolicyStatement({
      sid: 'RunNotebookTasksInCluster',
      actions: ['ecs:RunTask'],
      resources: [familyArn],
      conditions: inCluster
    }),
    new iam.PolicyStatement({
      sid: 'ManageNotebookTasksInCluster',
      actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
      resources: [tasksArn],
      conditions: inCluster
    }),
    new iam.PolicyStatement({
      sid: 'TagNotebookTasksAtLaunch',
      actions: ['ecs:TagResource'],
      resources: [tasksArn, familyArn],
      conditions: { StringEquals: { 'ecs:CreateAction': ['RunTask', 'RegisterTaskDefinition'] } }
    }),
    new iam.PolicyStatement({
      sid: 'RegisterNotebookRevisions',
      actions: ['ecs:RegisterTaskDefinition', 'ecs:DescribeTaskDefinition'],
      resources: ['*']
    }),
    // The ecs backend checks its subnets and security groups exist before the first spawn
    // (westtek_spawner/backends/ecs.py), so a wrong setting is named instead of failing a task.
    new iam.PolicyStatement({
      sid: 'CheckNotebookNetwork',
      actions: ['ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups'],
      resources: ['*']
    }),
    new iam.PolicyStatement({
      sid: 'PassOnlyNotebookRoles',
      actions: ['iam:PassRole'],
      resources: grants.passRoles.map(role => role.roleArn),
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } }
    }),
    new iam.PolicyStatement({
      sid: 'CreateTaggedAccessPoints',
      actions: ['elasticfilesystem:CreateAccessPoint'],
      resources: [grants.fileSystem.fileSystemArn],
      conditions: {
        Null: {
          [`aws:RequestTag/${TAG_KEYS.labId}`]: 'false',
          [`aws:RequestTag/${TAG_KEYS.researcherId}`]: 'false'
        }
      }
    }),
    new iam.PolicyStatement({
      sid: 'TagAccessPointsAtCreation',
      actions: ['elasticfilesystem:TagResource'],
      resources: [accessPoints],
      conditions: { StringEquals: { 'elasticfilesystem:CreateAction': 'CreateAccessPoint' } }
    }),
    new iam.PolicyStatement({
      sid: 'FindAccessPoints',
      actions: ['elasticfilesystem:DescribeAccessPoints'],
      resources: [grants.fileSystem.fileSystemArn, accessPoints]
    }),
    new iam.PolicyStatement({
      sid: 'ListSnapshots',
      actions: ['s3:ListBucket'],
      resources: [grants.snapshotBucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': 'labs/*' } }
    }),
    new iam.PolicyStatement({
      sid: 'ReadSnapshots',
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [grants.snapshotBucket.arnForObjects('labs/*')]
    }),
    // A server launched from a snapshot another lab shared restores it from its own lab's
    // store: the hub service copies it there first (westtek_hub/stores.py). Store objects
    // are written once; only the copy's lock objects are ever deleted. Big packs go up in
    // parts, and an upload that fails is aborted (its parts are billed until then).
    new iam.PolicyStatement({
      sid: 'CopySharedSnapshotsIntoLabs',
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resources: [grants.snapshotBucket.arnForObjects('labs/*')]
    }),
    // A year on, the packs a copy reads are in Deep Archive: the copy asks S3 for them back
    // and the launch waits (westtek_hub/archived_launches.py). Packs only, never restored
    // anywhere else.
    new iam.PolicyStatement({
      sid: 'ThawSharedSnapshotPacks',
      actions: ['s3:RestoreObject'],
      resources: [grants.snapshotBucket.arnForObjects('labs/*/data/*')]
    }),
    new iam.PolicyStatement({
      sid: 'ReleaseCopyLocks',
      actions: ['s3:DeleteObject'],
      resources: [grants.snapshotBucket.arnForObjects('labs/*/locks/*')]
    }),
    // Each lab's memory (westtek_hub/knowledge.py) keeps its documents in the lab's
    // knowledge base under its own scope, labs/{lab}/kb/env/lab%20memory/, and replaces
    // them there; it never touches a server's documents beside them.
    new iam.PolicyStatement({
      sid: 'WriteLabMemoryDocuments',
      actions: ['s3:PutObject', 's3:DeleteObject'],
      resources: [grants.snapshotBucket.arnForObjects(`labs/*/kb/env/${LAB_MEMORY_SCOPE}/*`)]
    }),
    // The hub service anchors each head of its audit chain (westtek_hub/audit_anchor.py):
    // it adds objects locked in COMPLIANCE mode and reads them back, never deletes one.
    new iam.PolicyStatement({
      sid: 'AnchorAuditHeads',
      actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject', 's3:GetObjectVersion'],
      resources: [grants.auditBucket.arnForObjects('audit/*')]
    }),
    new iam.PolicyStatement({
      sid: 'ListAuditHeads',
      actions: ['s3:ListBucketVersions'],
      resources: [grants.auditBucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': 'audit/*' } }
    }),
    new iam.PolicyStatement({
      sid: 'SnapshotKeyThroughS3',
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: [grants.snapshotKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } }
    }),
    // Lab stores are encrypted client-side with a data key under the lab's encryption context
    // (westtek_core.store): the hub service unwraps one to read a lab's snapshots and makes
    // one for a lab store it creates to receive a shared snapshot; never a key without a lab.
    new iam.PolicyStatement({
      sid: 'LabStoreDataKeys',
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: [grants.snapshotKey.keyArn],
      conditions: { Null: { [`kms:EncryptionContext:${TAG_KEYS.labId}`]: 'false' } }
    }),
    new iam.PolicyStatement({
      sid: 'ReadOAuthClientSecret',
      actions: ['cognito-idp:DescribeUserPoolClient'],
      resources: [grants.userPool.userPoolArn]
    })
  ];
  if (grants.knowledgeBases.length) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'LabMemoryKnowledgeBases',
        actions: ['bedrock:Retrieve', 'bedrock:StartIngestionJob', 'bedrock:GetIngestionJob'],
        resources: grants.knowledgeBases.map(kb => kb.arn)
      })
    );
  }
  return statements;
}
