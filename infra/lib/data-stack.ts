/**
 * Data: the PostgreSQL database of JupyterHub and the West Tek hub service (RDS, encrypted,
 * TLS enforced, isolated subnets, multi-AZ and deletion-protected in prod), its master
 * password managed and rotated by RDS in Secrets Manager.
 */
import { Duration, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { DATABASE_PORT } from './names';
import { ISecurityGroups, SUBNETS } from './network-stack';
import { dataRemovalPolicy } from './storage-stack';

/** The database JupyterHub and the hub service use (one database, separate schemas or names). */
export const DATABASE_NAME = 'westtek';

/** Properties of the data stack. */
export interface IDataStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
  /** The VPC. */
  readonly vpc: ec2.IVpc;
  /** The deployment's security groups. */
  readonly securityGroups: ISecurityGroups;
}

/** The RDS PostgreSQL instance. */
export class DataStack extends Stack {
  /** The database instance. */
  readonly database: rds.DatabaseInstance;
  /** Its master credentials (JSON: username, password), rotated by RDS. */
  readonly secret: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: IDataStackProps) {
    super(scope, id, props);
    const { config } = props;

    const key = new kms.Key(this, 'DatabaseKey', {
      description: 'West Tek database storage and Performance Insights',
      enableKeyRotation: true,
      removalPolicy: dataRemovalPolicy(config)
    });
    const engine = rds.DatabaseInstanceEngine.postgres({
      version: rds.PostgresEngineVersion.VER_17_9
    });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      description: 'West Tek PostgreSQL: TLS only, slow statements logged',
      parameters: { 'rds.force_ssl': '1', log_min_duration_statement: '1000' }
    });

    // Log groups made here (not by RDS, nor by a log-retention Lambda) so they carry a retention.
    const instanceIdentifier = `westtek-${config.stage}`;
    const logGroups = ['postgresql', 'upgrade'].map(
      log =>
        new logs.LogGroup(this, `Logs-${log}`, {
          logGroupName: `/aws/rds/instance/${instanceIdentifier}/${log}`,
          retention: config.logRetentionDays,
          removalPolicy: dataRemovalPolicy(config)
        })
    );

    this.database = new rds.DatabaseInstance(this, 'Database', {
      instanceIdentifier,
      engine,
      instanceType: new ec2.InstanceType(config.databaseInstanceType),
      vpc: props.vpc,
      vpcSubnets: { subnetGroupName: SUBNETS.data },
      securityGroups: [props.securityGroups.database],
      port: DATABASE_PORT,
      databaseName: DATABASE_NAME,
      // RDS keeps the master password in Secrets Manager and rotates it itself (every 7 days).
      credentials: rds.Credentials.fromUsername('westtek'),
      manageMasterUserPassword: true,
      multiAz: config.databaseMultiAz,
      allocatedStorage: 20,
      maxAllocatedStorage: 200,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      storageEncryptionKey: key,
      parameterGroup,
      iamAuthentication: true,
      backupRetention: Duration.days(config.databaseBackupDays),
      deletionProtection: config.deletionProtection,
      removalPolicy: dataRemovalPolicy(config),
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: key,
      monitoringInterval: Duration.seconds(60),
      autoMinorVersionUpgrade: true,
      publiclyAccessible: false
    });
    for (const group of logGroups) {
      this.database.node.addDependency(group);
    }
    this.secret = this.database.secret!;

    Validations.of(this.database).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]',
      reason:
        'The AWS-managed enhanced-monitoring policy is the documented one; it only writes to the RDSOSMetrics log group.'
    });

    Validations.of(this.database).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason:
        'The default port is kept: the database sits in isolated subnets reachable only from the hub security group.'
    });
    if (!config.deletionProtection) {
      Validations.of(this.database).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason: 'dev stacks are torn down with `cdk destroy`; prod enables deletion protection.'
      });
    }
    if (!config.databaseMultiAz) {
      Validations.of(this.database).acknowledge({
        id: 'AwsSolutions-RDS3',
        reason: 'dev runs a single-AZ database to save cost; prod is multi-AZ.'
      });
    }
  }
}
