/**
 * Network: a VPC over two availability zones (public, private-with-egress and isolated
 * subnets), NAT, VPC endpoints for S3, ECR and CloudWatch Logs, flow logs, and every security
 * group of the deployment with its rules, so the other stacks only consume them.
 */
import { RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { DATABASE_PORT, HUB_API_PORT, NOTEBOOK_PORT, PROXY_PORT } from './names';

/** Subnet group names, referenced by `vpcSubnets: { subnetGroupName }` in other stacks. */
export const SUBNETS = {
  public: 'public',
  /** Hub and notebook tasks, EFS mount targets, interface endpoints. */
  app: 'app',
  /** The database: no route to the internet at all. */
  data: 'data'
} as const;

/** The security groups of the deployment. */
export interface ISecurityGroups {
  /** The hub's load balancer. */
  readonly alb: ec2.SecurityGroup;
  /** The hub task (configurable-http-proxy and JupyterHub). */
  readonly hub: ec2.SecurityGroup;
  /** Every notebook task the spawner runs. */
  readonly notebook: ec2.SecurityGroup;
  /** EFS mount targets. */
  readonly fileSystem: ec2.SecurityGroup;
  /** The PostgreSQL database. */
  readonly database: ec2.SecurityGroup;
  /** The WorkSpaces Secure Browser portal's network interfaces. */
  readonly secureBrowser: ec2.SecurityGroup;
  /** The interface VPC endpoints (ECR, CloudWatch Logs). */
  readonly endpoints: ec2.SecurityGroup;
}

/** Properties of the network stack. */
export interface INetworkStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
}

/** The VPC and security groups. */
export class NetworkStack extends Stack {
  /** The VPC. */
  readonly vpc: ec2.Vpc;
  /** The security groups, wired together. */
  readonly securityGroups: ISecurityGroups;

  constructor(scope: Construct, id: string, props: INetworkStackProps) {
    super(scope, id, props);
    const { config } = props;

    // Two AZs in both stages: an ALB and the Secure Browser portal each need subnets in two.
    // dev saves by running one NAT gateway, a single-AZ database and one hub task.
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: config.natGateways,
      subnetConfiguration: [
        { name: SUBNETS.public, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: SUBNETS.app, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: SUBNETS.data, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 }
      }
    });

    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: config.logRetentionDays,
      removalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.REJECT
    });

    this.securityGroups = this.makeSecurityGroups(config);

    // Image pulls and logs stay inside the VPC; the S3 gateway endpoint above carries ECR layers.
    const endpoints: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS
    };
    for (const [name, service] of Object.entries(endpoints)) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: { subnetGroupName: SUBNETS.app },
        privateDnsEnabled: true,
        securityGroups: [this.securityGroups.endpoints],
        open: false
      });
    }
  }

  private makeSecurityGroups(config: IStageConfig): ISecurityGroups {
    const group = (id: string, description: string, allowAllOutbound: boolean) =>
      new ec2.SecurityGroup(this, id, { vpc: this.vpc, description, allowAllOutbound });

    const alb = group('AlbSg', 'West Tek hub load balancer: HTTPS in, proxy out', false);
    // Tasks call AWS APIs (ECS, S3, Bedrock...) and package indexes through NAT.
    const hub = group(
      'HubSg',
      'West Tek hub task: proxy from the ALB, hub API from notebooks',
      true
    );
    const notebook = group(
      'NotebookSg',
      'West Tek notebook tasks: reached only by the hub proxy',
      true
    );
    const fileSystem = group('EfsSg', 'West Tek EFS mount targets: NFS from notebook tasks', false);
    const database = group('DbSg', 'West Tek PostgreSQL: from the hub only', false);
    const secureBrowser = group('SecureBrowserSg', 'WorkSpaces Secure Browser sessions', true);
    const endpoints = group(
      'EndpointSg',
      'West Tek interface endpoints: HTTPS from the tasks',
      false
    );

    for (const cidr of config.allowedCidrs) {
      alb.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), `HTTPS from ${cidr}`);
    }
    alb.addIngressRule(secureBrowser, ec2.Port.tcp(443), 'HTTPS from Secure Browser sessions');
    alb.connections.allowTo(hub, ec2.Port.tcp(PROXY_PORT), 'ALB to configurable-http-proxy');
    // Sources below allow all outbound traffic, so only the ingress side needs a rule.
    notebook.addIngressRule(hub, ec2.Port.tcp(NOTEBOOK_PORT), 'proxy and hub to notebook servers');
    hub.addIngressRule(notebook, ec2.Port.tcp(HUB_API_PORT), 'notebook servers to the hub API');
    fileSystem.addIngressRule(notebook, ec2.Port.tcp(2049), 'notebook tasks mount EFS');
    database.addIngressRule(hub, ec2.Port.tcp(DATABASE_PORT), 'hub and hub service to PostgreSQL');

    for (const tasks of [hub, notebook]) {
      endpoints.addIngressRule(
        tasks,
        ec2.Port.tcp(443),
        'tasks to ECR and CloudWatch Logs endpoints'
      );
    }
    if (config.allowedCidrs.some(cidr => cidr === '0.0.0.0/0')) {
      Validations.of(alb).acknowledge({
        id: 'AwsSolutions-EC23',
        reason:
          'The hub is the public HTTPS entry point of the stage (allowedCidrs), port 443 only; every request is authenticated by JupyterHub through Cognito.'
      });
    }

    return { alb, hub, notebook, fileSystem, database, secureBrowser, endpoints };
  }
}
