/**
 * The contract between the stacks and the hub's configuration (hub_config/aws.py): each
 * setting is a `WESTTEK_*` environment variable, filled from a stack output. In ECS the hub
 * container gets them all directly (compute stack); anywhere else, `scripts/stack-env.ts`
 * reads the outputs with `aws cloudformation describe-stacks` and prints them as exports.
 */

/** One hub setting: its environment variable and the stack output it comes from. */
export interface IHubSetting {
  /** Environment variable hub_config reads. */
  readonly env: string;
  /** Stack part (`westtek-{stage}-{part}`). */
  readonly stack: 'compute' | 'identity' | 'ai';
  /** Output key in that stack. */
  readonly output: string;
  /** What it is. */
  readonly description: string;
  /** Present only when the AI stack is deployed. */
  readonly optional?: boolean;
}

/** Every setting, in the order the deploy guide lists them. */
export const HUB_SETTINGS: IHubSetting[] = [
  {
    env: 'WESTTEK_HUB_URL',
    stack: 'compute',
    output: 'HubUrl',
    description: 'Public URL of the hub'
  },
  {
    env: 'WESTTEK_HUB_CONNECT_URL',
    stack: 'compute',
    output: 'HubConnectUrl',
    description: 'Hub API URL notebook servers call back to (Cloud Map name)'
  },
  {
    env: 'WESTTEK_ECS_CLUSTER',
    stack: 'compute',
    output: 'ClusterName',
    description: 'ECS cluster of notebook tasks'
  },
  {
    env: 'WESTTEK_NOTEBOOK_TASK_FAMILY',
    stack: 'compute',
    output: 'NotebookTaskFamily',
    description: 'Task definition family the spawner registers revisions in'
  },
  {
    env: 'WESTTEK_NOTEBOOK_TASK_DEFINITION_ARN',
    stack: 'compute',
    output: 'NotebookTaskDefinitionArn',
    description: 'The template revision the spawner copies (image, logging, execution role)'
  },
  {
    env: 'WESTTEK_NOTEBOOK_TASK_ROLE_ARNS',
    stack: 'compute',
    output: 'NotebookTaskRoleArns',
    description: 'JSON: lab id → task role ARN of that lab'
  },
  {
    env: 'WESTTEK_NOTEBOOK_EXECUTION_ROLE_ARN',
    stack: 'compute',
    output: 'NotebookExecutionRoleArn',
    description: 'Execution role of notebook tasks (image pull, logs)'
  },
  {
    env: 'WESTTEK_NOTEBOOK_SUBNETS',
    stack: 'compute',
    output: 'NotebookSubnetIds',
    description: 'Comma-separated private subnets of notebook tasks'
  },
  {
    env: 'WESTTEK_NOTEBOOK_SECURITY_GROUPS',
    stack: 'compute',
    output: 'NotebookSecurityGroupId',
    description: 'Security group of notebook tasks'
  },
  {
    env: 'WESTTEK_NOTEBOOK_LOG_GROUP',
    stack: 'compute',
    output: 'NotebookLogGroup',
    description: 'CloudWatch log group of notebook tasks'
  },
  {
    env: 'WESTTEK_EFS_FILE_SYSTEM_ID',
    stack: 'compute',
    output: 'FileSystemId',
    description: 'EFS file system of researcher home directories'
  },
  {
    env: 'WESTTEK_SNAPSHOT_BUCKET',
    stack: 'compute',
    output: 'SnapshotBucketName',
    description: 'Snapshot bucket (each lab under labs/{lab_id}/)'
  },
  {
    env: 'WESTTEK_AUDIT_BUCKET',
    stack: 'compute',
    output: 'AuditBucketName',
    description:
      'Audit anchor bucket (S3 Object Lock): the hub service locks each audit chain head under audit/{stage}/'
  },
  {
    env: 'WESTTEK_SNAPSHOT_KMS_KEY_ARN',
    stack: 'compute',
    output: 'SnapshotKeyArn',
    description: 'KMS key of the snapshot bucket'
  },
  {
    env: 'WESTTEK_DB_HOST',
    stack: 'compute',
    output: 'DatabaseHost',
    description: 'PostgreSQL host'
  },
  {
    env: 'WESTTEK_DB_PORT',
    stack: 'compute',
    output: 'DatabasePort',
    description: 'PostgreSQL port'
  },
  {
    env: 'WESTTEK_DB_SECRET_ARN',
    stack: 'compute',
    output: 'DatabaseSecretArn',
    description: 'Secrets Manager secret with the database user and password (rotated by RDS)'
  },
  {
    env: 'WESTTEK_EVENT_BUS',
    stack: 'compute',
    output: 'EventBusName',
    description: 'EventBridge bus for drift events'
  },
  {
    env: 'WESTTEK_ALERT_TOPIC_ARNS',
    stack: 'compute',
    output: 'AlertTopicArns',
    description: "JSON: lab id → ARN of the lab's alert topic (alerts stack)"
  },
  {
    env: 'WESTTEK_COGNITO_USER_POOL_ID',
    stack: 'identity',
    output: 'UserPoolId',
    description: 'Cognito user pool'
  },
  {
    env: 'WESTTEK_COGNITO_CLIENT_ID',
    stack: 'identity',
    output: 'HubClientId',
    description: 'OAuth client id of the hub (its secret: cognito-idp describe-user-pool-client)'
  },
  {
    env: 'WESTTEK_OAUTH_AUTHORIZE_URL',
    stack: 'identity',
    output: 'OAuthAuthorizeUrl',
    description: 'OAuth authorize endpoint'
  },
  {
    env: 'WESTTEK_OAUTH_TOKEN_URL',
    stack: 'identity',
    output: 'OAuthTokenUrl',
    description: 'OAuth token endpoint'
  },
  {
    env: 'WESTTEK_OAUTH_CALLBACK_URL',
    stack: 'identity',
    output: 'OAuthCallbackUrl',
    description: "The hub's OAuth callback"
  },
  {
    env: 'WESTTEK_LABS',
    stack: 'identity',
    output: 'Labs',
    description:
      'JSON: [{"id": lab id, "adGroup": AD group, "adminAdGroup": AD group of its admins}]'
  },
  {
    env: 'WESTTEK_HUB_ADMIN_AD_GROUPS',
    stack: 'identity',
    output: 'HubAdminAdGroups',
    description: 'JSON: AD groups whose members administer the hub'
  },
  {
    env: 'WESTTEK_KNOWLEDGE_BASE_IDS',
    stack: 'ai',
    output: 'KnowledgeBaseIds',
    description: 'JSON: lab id → Bedrock knowledge base id',
    optional: true
  },
  {
    env: 'WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS',
    stack: 'ai',
    output: 'KnowledgeBaseDataSourceIds',
    description: "JSON: lab id → id of its knowledge base's S3 data source",
    optional: true
  }
];
