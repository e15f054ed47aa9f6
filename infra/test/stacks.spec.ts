/**
 * The rest of the deployment, stage by stage: network, database, identity, compute, alerts,
 * access and AI, and what differs between dev and prod.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { Match } from 'aws-cdk-lib/assertions';

import { DRIFT_DETAIL_TYPE, DRIFT_SOURCE } from '../lib/alerts-stack';
import { HOME_VOLUME } from '../lib/compute-stack';
import { NOTEBOOK_CONTAINER, NOTEBOOK_PORT, PROXY_PORT } from '../lib/names';
import { STAGES, TEST_LABS, resourcesOf, synthStage } from './stage';

for (const stage of STAGES) {
  const prod = stage === 'prod';

  describe(`network (${stage})`, () => {
    const { templates, json } = synthStage(stage);

    it('spans two availability zones with public, app and isolated data subnets', () => {
      const subnets = resourcesOf(json.network, 'AWS::EC2::Subnet');
      assert.equal(subnets.length, 6);
      const zones = new Set(
        subnets.map(([, subnet]) => JSON.stringify(subnet.Properties.AvailabilityZone))
      );
      assert.equal(zones.size, 2);
    });

    it(`runs ${prod ? 'a NAT gateway per zone' : 'a single NAT gateway'}`, () => {
      templates.network.resourceCountIs('AWS::EC2::NatGateway', prod ? 2 : 1);
    });

    it('keeps S3, ECR and CloudWatch Logs traffic on VPC endpoints', () => {
      templates.network.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Gateway',
        ServiceName: Match.objectLike({
          'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.s3$')])]
        })
      });
      const interfaces = resourcesOf(json.network, 'AWS::EC2::VPCEndpoint')
        .filter(([, endpoint]) => endpoint.Properties.VpcEndpointType === 'Interface')
        .map(([, endpoint]) => JSON.stringify(endpoint.Properties.ServiceName));
      for (const service of ['ecr.api', 'ecr.dkr', 'logs']) {
        assert.ok(
          interfaces.some(name => name.includes(service)),
          service
        );
      }
      templates.network.resourceCountIs('AWS::EC2::FlowLog', 1);
    });

    it('lets only the hub reach notebooks and the database, and only notebooks reach EFS', () => {
      const ingress = resourcesOf(json.network, 'AWS::EC2::SecurityGroupIngress').map(
        ([, rule]) => rule.Properties
      );
      const into = (group: string) =>
        ingress
          .filter(rule => rule.GroupId['Fn::GetAtt'][0].startsWith(group))
          .map(rule => rule.SourceSecurityGroupId['Fn::GetAtt'][0]);
      assert.deepEqual(
        into('NotebookSg').map(id => id.replace(/[0-9A-F]{8}$/, '')),
        ['HubSg']
      );
      assert.deepEqual(
        into('DbSg').map(id => id.replace(/[0-9A-F]{8}$/, '')),
        ['HubSg']
      );
      assert.deepEqual(
        into('EfsSg').map(id => id.replace(/[0-9A-F]{8}$/, '')),
        ['NotebookSg']
      );
    });
  });

  describe(`database (${stage})`, () => {
    const { templates } = synthStage(stage);

    it(`is PostgreSQL, encrypted, private, TLS-only${prod ? ', multi-AZ and protected' : ''}`, () => {
      templates.data.hasResourceProperties('AWS::RDS::DBInstance', {
        Engine: 'postgres',
        MultiAZ: prod,
        DeletionProtection: prod,
        StorageEncrypted: true,
        PubliclyAccessible: false,
        ManageMasterUserPassword: true,
        EnableIAMDatabaseAuthentication: true,
        EnableCloudwatchLogsExports: ['postgresql', 'upgrade']
      });
      templates.data.hasResourceProperties('AWS::RDS::DBParameterGroup', {
        Parameters: Match.objectLike({ 'rds.force_ssl': '1' })
      });
    });
  });

  describe(`identity (${stage})`, () => {
    const { templates, config } = synthStage(stage);

    it(
      prod ? 'federates with Active Directory over SAML' : 'signs in native users (no AD in dev)',
      () => {
        templates.identity.resourceCountIs('AWS::Cognito::UserPoolIdentityProvider', prod ? 1 : 0);
        if (prod) {
          templates.identity.hasResourceProperties('AWS::Cognito::UserPoolIdentityProvider', {
            ProviderType: 'SAML',
            ProviderDetails: Match.objectLike({ MetadataURL: config.samlMetadataUrl }),
            AttributeMapping: Match.objectLike({ 'custom:ad_groups': config.samlGroupsAttribute })
          });
        }
      }
    );

    it('gives the hub an OAuth code-flow client with a secret, calling back to the hub', () => {
      templates.identity.hasResourceProperties('AWS::Cognito::UserPoolClient', {
        GenerateSecret: true,
        AllowedOAuthFlows: ['code'],
        AllowedOAuthScopes: Match.arrayWith(['openid']),
        CallbackURLs: [`https://${config.hubDomainName}/hub/oauth_callback`],
        SupportedIdentityProviders: prod ? ['ActiveDirectory', 'COGNITO'] : ['COGNITO']
      });
    });

    it('has a group per lab and one for hub admins; requires MFA of native users', () => {
      const groups = resourcesOf(
        synthStage(stage).json.identity,
        'AWS::Cognito::UserPoolGroup'
      ).map(([, group]) => group.Properties.GroupName);
      assert.deepEqual(groups.sort(), [...TEST_LABS.map(lab => lab.id), 'westtek-admins'].sort());
      templates.identity.hasResourceProperties('AWS::Cognito::UserPool', {
        MfaConfiguration: 'ON',
        AdminCreateUserConfig: { AllowAdminCreateUserOnly: true }
      });
    });
  });

  describe(`compute (${stage})`, () => {
    const { templates, json, config } = synthStage(stage);

    it('defines the notebook task family the spawner registers revisions in', () => {
      templates.compute.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Family: 'westtek-notebook',
        RequiresCompatibilities: ['FARGATE'],
        NetworkMode: 'awsvpc',
        ContainerDefinitions: [
          Match.objectLike({
            Name: NOTEBOOK_CONTAINER,
            PortMappings: [Match.objectLike({ ContainerPort: NOTEBOOK_PORT })],
            MemoryReservation: Match.anyValue(),
            MountPoints: [Match.objectLike({ SourceVolume: HOME_VOLUME })]
          })
        ],
        Volumes: [
          {
            Name: HOME_VOLUME,
            EFSVolumeConfiguration: Match.objectLike({
              TransitEncryption: 'ENABLED',
              AuthorizationConfig: { IAM: 'ENABLED' }
            })
          }
        ]
      });
      templates.compute.hasResourceProperties('AWS::ECS::Cluster', {
        ClusterName: `westtek-${stage}`,
        ClusterSettings: [{ Name: 'containerInsights', Value: 'enhanced' }]
      });
    });

    it("runs the images `make images` builds, from the stage's ECR repositories", () => {
      const built = JSON.parse(readFileSync(join(__dirname, '../../images/images.json'), 'utf8'));
      const images: Record<string, string> = {};
      for (const [, definition] of resourcesOf(json.compute, 'AWS::ECS::TaskDefinition')) {
        for (const container of definition.Properties.ContainerDefinitions) {
          images[container.Name] = JSON.stringify(container.Image);
        }
      }
      for (const [container, image, repositoryId] of [
        [NOTEBOOK_CONTAINER, 'notebook', 'NotebookRepository'],
        ['hub', 'hub', 'HubRepository']
      ]) {
        // `westtek/notebook:latest` is pushed as `westtek-<stage>/notebook:latest`
        assert.match(
          images[container],
          new RegExp(`Ref${repositoryId}\\w+"}},":${built.tag}"]]}$`)
        );
        const [, repository] = resourcesOf(json.storage, 'AWS::ECR::Repository').find(([id]) =>
          id.startsWith(repositoryId)
        )!;
        const name = `westtek-${stage}/${built.images[image].split('/').pop()}`;
        assert.equal(repository.Properties.RepositoryName, name);
      }
      // the hub's task runs the production configuration the hub image carries
      templates.compute.hasResourceProperties('AWS::ECS::TaskDefinition', {
        ContainerDefinitions: Match.arrayWith([
          Match.objectLike({
            Name: 'hub',
            Command: ['jupyterhub', '-f', '/srv/westtek/hub_config/aws.py']
          })
        ])
      });
    });

    it('runs one hub task (proxy + JupyterHub) behind an HTTPS load balancer', () => {
      templates.compute.hasResourceProperties('AWS::ECS::Service', {
        DesiredCount: 1,
        LaunchType: 'FARGATE',
        DeploymentConfiguration: Match.objectLike({ MaximumPercent: 100, MinimumHealthyPercent: 0 })
      });
      templates.compute.hasResourceProperties('AWS::ECS::TaskDefinition', {
        ContainerDefinitions: [
          Match.objectLike({ Name: 'hub' }),
          Match.objectLike({ Name: 'proxy' })
        ]
      });
      templates.compute.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
        Port: 443,
        Protocol: 'HTTPS',
        Certificates: [{ CertificateArn: config.certificateArn }],
        SslPolicy: Match.stringLikeRegexp('TLS13')
      });
      templates.compute.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
      templates.compute.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
        Port: PROXY_PORT,
        TargetType: 'ip',
        HealthCheckPath: '/hub/health'
      });
      const [, alb] = resourcesOf(json.compute, 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0];
      const attributes = Object.fromEntries(
        alb.Properties.LoadBalancerAttributes.map((a: any) => [a.Key, a.Value])
      );
      assert.equal(attributes['deletion_protection.enabled'], String(prod));
      assert.equal(attributes['access_logs.s3.enabled'], 'true');
      assert.equal(attributes['routing.http.drop_invalid_header_fields.enabled'], 'true');
    });

    it('hands the hub every WESTTEK_* value hub_config needs, and outputs them', () => {
      const [, hubTask] = resourcesOf(json.compute, 'AWS::ECS::TaskDefinition').find(([id]) =>
        id.startsWith('HubTask')
      )!;
      const hub = hubTask.Properties.ContainerDefinitions.find(
        (container: any) => container.Name === 'hub'
      );
      const names = hub.Environment.map((variable: any) => variable.Name);
      for (const name of [
        'WESTTEK_ECS_CLUSTER',
        'WESTTEK_NOTEBOOK_TASK_FAMILY',
        'WESTTEK_NOTEBOOK_TASK_ROLE_ARNS',
        'WESTTEK_NOTEBOOK_EXECUTION_ROLE_ARN',
        'WESTTEK_NOTEBOOK_SUBNETS',
        'WESTTEK_NOTEBOOK_SECURITY_GROUPS',
        'WESTTEK_EFS_FILE_SYSTEM_ID',
        'WESTTEK_SNAPSHOT_BUCKET',
        'WESTTEK_DB_HOST',
        'WESTTEK_DB_SECRET_ARN',
        'WESTTEK_COGNITO_CLIENT_ID',
        'WESTTEK_OAUTH_TOKEN_URL',
        'WESTTEK_LABS',
        'WESTTEK_EVENT_BUS'
      ]) {
        assert.ok(names.includes(name), name);
      }
      assert.deepEqual(
        Object.keys(
          hub.Secrets.reduce((all: any, secret: any) => ({ ...all, [secret.Name]: 1 }), {})
        ).sort(),
        ['CONFIGPROXY_AUTH_TOKEN', 'WESTTEK_HUB_SECRET']
      );
    });
  });

  describe(`events and alerts (${stage})`, () => {
    const { templates, json } = synthStage(stage);

    it('routes drift events from the West Tek bus to an encrypted SNS topic', () => {
      templates.alerts.hasResourceProperties('AWS::Events::EventBus', { Name: `westtek-${stage}` });
      templates.alerts.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: [DRIFT_SOURCE],
          'detail-type': [DRIFT_DETAIL_TYPE],
          detail: { status: ['CRITICAL_DRIFT'] }
        },
        Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('^Alerts') } })]
      });
      templates.alerts.hasResourceProperties('AWS::SNS::Topic', {
        KmsMasterKeyId: Match.anyValue()
      });
    });

    it('alarms on hub health, hub errors, the database and critical drift', () => {
      const alarms = resourcesOf(json.alerts, 'AWS::CloudWatch::Alarm').map(
        ([, alarm]) => alarm.Properties
      );
      const metrics = alarms.map(alarm => alarm.MetricName);
      for (const metric of [
        'HealthyHostCount',
        'HTTPCode_Target_5XX_Count',
        'CPUUtilization',
        'FreeStorageSpace',
        'TriggeredRules'
      ]) {
        assert.ok(metrics.includes(metric), metric);
      }
      for (const alarm of alarms) {
        assert.equal(alarm.AlarmActions.length, 1, alarm.AlarmDescription);
      }
    });

    it('lets the hub and notebooks publish only drift events, only to the bus', () => {
      templates.alerts.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: [
            Match.objectLike({
              Action: 'events:PutEvents',
              Condition: { StringEquals: { 'events:source': DRIFT_SOURCE } },
              Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DriftBus'), 'Arn'] }
            })
          ]
        }
      });
      const [, policy] = resourcesOf(json.alerts, 'AWS::IAM::Policy').find(([id]) =>
        id.startsWith('PublishDriftEvents')
      )!;
      assert.equal(policy.Properties.Roles.length, 1 + TEST_LABS.length);
    });

    it('gives each lab an alert topic its own notebook role alone may publish to', () => {
      for (const lab of TEST_LABS) {
        templates.alerts.hasResourceProperties('AWS::SNS::Topic', {
          TopicName: `westtek-${stage}-alerts-${lab.id}`,
          KmsMasterKeyId: Match.anyValue()
        });
      }
      const world = synthStage(stage).world;
      const topic = (lab: string) =>
        `arn:aws:sns:${synthStage(stage).config.region}:111122223333:westtek-${stage}-alerts-${lab}`;
      const [own, other] = ['vault-1', 'vault-13'].map(
        lab => world.rolesTagged({ lab_id: lab, westtek_role: 'notebook' })[0]
      );
      assert.ok(world.decide(own, { action: 'sns:Publish', resource: topic('vault-1') }));
      assert.equal(
        world.decide(other, { action: 'sns:Publish', resource: topic('vault-1') }),
        false,
        "another lab's role"
      );
    });
  });

  describe(`access and AI (${stage})`, () => {
    const { templates, json, config } = synthStage(stage);

    it(
      prod
        ? 'opens the hub in a Secure Browser portal signed in through AD'
        : 'has no Secure Browser portal in dev',
      () => {
        if (!prod) {
          assert.equal(json.access, undefined);
          return;
        }
        templates.access.resourceCountIs('AWS::WorkSpacesWeb::Portal', 1);
        templates.access.hasResourceProperties('AWS::WorkSpacesWeb::IdentityProvider', {
          IdentityProviderType: 'SAML',
          IdentityProviderDetails: { MetadataURL: config.samlMetadataUrl }
        });
        templates.access.hasResourceProperties('AWS::WorkSpacesWeb::UserSettings', {
          DownloadAllowed: 'Disabled',
          PrintAllowed: 'Disabled'
        });
        const [, browser] = resourcesOf(json.access, 'AWS::WorkSpacesWeb::BrowserSettings')[0];
        const policy = JSON.parse(browser.Properties.BrowserPolicy);
        assert.deepEqual(policy.chromePolicies.RestoreOnStartupURLs.value, [
          `https://${config.hubDomainName}/hub/`
        ]);
        assert.ok(policy.chromePolicies.URLAllowlist.value.includes(config.hubDomainName));
      }
    );

    it(
      prod
        ? 'creates a knowledge base per lab and no Bedrock agents (they run inside West Tek)'
        : 'has no Bedrock resources in dev',
      () => {
        if (!prod) {
          assert.equal(json.ai, undefined);
          return;
        }
        templates.ai.resourceCountIs('AWS::Bedrock::Agent', 0);
        templates.ai.resourceCountIs('AWS::Bedrock::KnowledgeBase', TEST_LABS.length);
        templates.ai.resourceCountIs('AWS::S3Vectors::Index', TEST_LABS.length);
        for (const lab of TEST_LABS) {
          templates.ai.hasResourceProperties('AWS::Bedrock::DataSource', {
            DataSourceConfiguration: {
              Type: 'S3',
              S3Configuration: Match.objectLike({ InclusionPrefixes: [`labs/${lab.id}/kb/`] })
            },
            VectorIngestionConfiguration: { ChunkingConfiguration: { ChunkingStrategy: 'NONE' } }
          });
        }
        templates.ai.hasResourceProperties('AWS::Bedrock::KnowledgeBase', {
          StorageConfiguration: Match.objectLike({ Type: 'S3_VECTORS' })
        });
      }
    );
  });
}
