/**
 * Events and alerts: the EventBridge bus West Tek publishes drift events on, a rule that sends
 * drift to an encrypted SNS topic, and CloudWatch alarms on the hub's health, the database
 * and critical drift, all notifying the same topic.
 *
 * Drift events: `source = "westtek.drift"`, `detail-type = "Drift Detected"`, `detail` =
 * the drift report's summary (`status`, `lab_id`, `researcher_id`, `environment_id`,
 * `baseline`, `changes`).
 */
import { CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { eventBusName } from './compute-stack';
import { alertTopicName } from './names';
import { dataRemovalPolicy } from './storage-stack';

/** The `source` of West Tek drift events. */
export const DRIFT_SOURCE = 'westtek.drift';
/** The `detail-type` of West Tek drift events. */
export const DRIFT_DETAIL_TYPE = 'Drift Detected';

/** Properties of the alerts stack. */
export interface IAlertsStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
  /** Roles that publish drift events (the hub and the notebook roles). */
  readonly publishers: iam.IRole[];
  /** Each lab's notebook role: it publishes critical drift to its lab's alert topic only. */
  readonly labPublishers: Record<string, iam.IRole>;
  /** The hub service. */
  readonly hubService: ecs.FargateService;
  /** The hub's load balancer. */
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  /** The hub's target group. */
  readonly hubTargetGroup: elbv2.ApplicationTargetGroup;
  /** The database. */
  readonly database: rds.DatabaseInstance;
}

/** The drift bus, rules, topic and alarms. */
export class AlertsStack extends Stack {
  /** The alerts topic. */
  readonly topic: sns.Topic;
  /** The drift event bus. */
  readonly bus: events.EventBus;
  /** Each lab's alert topic (critical drift, to the lab's e-mail and SMS subscribers). */
  readonly labTopics: Record<string, sns.Topic> = {};

  constructor(scope: Construct, id: string, props: IAlertsStackProps) {
    super(scope, id, props);
    const { config } = props;

    // A key of our own: EventBridge and CloudWatch must be allowed to publish to the topic.
    const key = new kms.Key(this, 'AlertsKey', {
      description: 'West Tek alerts topic',
      enableKeyRotation: true,
      removalPolicy: dataRemovalPolicy(config)
    });
    for (const service of ['events.amazonaws.com', 'cloudwatch.amazonaws.com']) {
      key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: `Publish${service.split('.')[0]}`,
          principals: [new iam.ServicePrincipal(service)],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': this.account } }
        })
      );
    }
    this.topic = new sns.Topic(this, 'Alerts', {
      topicName: `westtek-${config.stage}-alerts`,
      displayName: `West Tek ${config.stage} alerts`,
      masterKey: key,
      enforceSSL: true
    });
    if (config.alarmEmail) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
    }

    // A topic per lab: its servers publish critical drift there (westtek_core.notify's
    // SnsSink, on by default when the spawner names the topic), its people subscribe.
    for (const lab of config.labs) {
      const topic = new sns.Topic(this, `LabAlerts-${lab.id}`, {
        topicName: alertTopicName(config.stage, lab.id),
        displayName: `West Tek ${config.stage} lab ${lab.id}`,
        masterKey: key,
        enforceSSL: true
      });
      for (const email of lab.alertEmails ?? []) {
        topic.addSubscription(new subscriptions.EmailSubscription(email));
      }
      for (const phone of lab.alertSms ?? []) {
        topic.addSubscription(new subscriptions.SmsSubscription(phone));
      }
      const publisher = props.labPublishers[lab.id];
      if (publisher) {
        // the server encrypts with the topic's key through SNS
        new iam.Policy(this, `PublishLabAlerts-${lab.id}`, {
          statements: [
            new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [topic.topicArn] }),
            new iam.PolicyStatement({
              actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
              resources: [key.keyArn],
              conditions: { StringEquals: { 'kms:ViaService': `sns.${this.region}.amazonaws.com` } }
            })
          ]
        }).attachToRole(publisher);
      }
      this.labTopics[lab.id] = topic;
    }

    this.bus = new events.EventBus(this, 'DriftBus', { eventBusName: eventBusName(config.stage) });
    const publish = new iam.Policy(this, 'PublishDriftEvents', {
      statements: [
        new iam.PolicyStatement({
          actions: ['events:PutEvents'],
          resources: [this.bus.eventBusArn],
          conditions: { StringEquals: { 'events:source': DRIFT_SOURCE } }
        })
      ]
    });
    for (const role of props.publishers) {
      publish.attachToRole(role);
    }

    const driftRule = (id: string, statuses: string[], description: string) =>
      new events.Rule(this, id, {
        eventBus: this.bus,
        description,
        eventPattern: {
          source: [DRIFT_SOURCE],
          detailType: [DRIFT_DETAIL_TYPE],
          detail: { status: statuses }
        },
        targets: [
          new targets.SnsTopic(this.topic, {
            message: events.RuleTargetInput.fromText(
              `West Tek drift ${events.EventField.fromPath('$.detail.status')} in lab ` +
                `${events.EventField.fromPath('$.detail.lab_id')}, environment ` +
                `${events.EventField.fromPath('$.detail.environment_id')} of ` +
                `${events.EventField.fromPath('$.detail.researcher_id')}`
            )
          })
        ]
      });
    const critical = driftRule(
      'CriticalDrift',
      ['CRITICAL_DRIFT'],
      'Critical drift: notify at once'
    );
    driftRule('MinorDrift', ['MINOR_DRIFT'], 'Minor drift: notify');

    const alarm = (id: string, alarmProps: cloudwatch.AlarmProps) => {
      const created = new cloudwatch.Alarm(this, id, alarmProps);
      created.addAlarmAction(new actions.SnsAction(this.topic));
      return created;
    };
    const tg = props.hubTargetGroup.metrics;
    alarm('HubUnhealthy', {
      alarmDescription: 'The hub answers no health check behind the load balancer',
      metric: tg.healthyHostCount({ period: Duration.minutes(1), statistic: 'Minimum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING
    });
    alarm('HubErrors', {
      alarmDescription: 'The hub returns server errors',
      metric: tg.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
        period: Duration.minutes(5)
      }),
      threshold: 20,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    });
    alarm('HubSlow', {
      alarmDescription: 'Hub responses are slow (p95 over 5 s)',
      metric: tg.targetResponseTime({ period: Duration.minutes(5), statistic: 'p95' }),
      threshold: 5,
      evaluationPeriods: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    });
    alarm('HubCpu', {
      alarmDescription: 'The hub task is CPU-bound',
      metric: props.hubService.metricCpuUtilization({ period: Duration.minutes(5) }),
      threshold: 85,
      evaluationPeriods: 3
    });
    alarm('DatabaseCpu', {
      alarmDescription: 'The database is CPU-bound',
      metric: props.database.metricCPUUtilization({ period: Duration.minutes(5) }),
      threshold: 80,
      evaluationPeriods: 3
    });
    alarm('DatabaseStorage', {
      alarmDescription: 'The database has under 2 GiB free',
      metric: props.database.metricFreeStorageSpace({ period: Duration.minutes(5) }),
      threshold: 2 * 1024 ** 3,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1
    });
    alarm('CriticalDriftEvents', {
      alarmDescription: 'Critical drift was detected in a research environment',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Events',
        metricName: 'TriggeredRules',
        dimensionsMap: { EventBusName: this.bus.eventBusName, RuleName: critical.ruleName },
        statistic: 'Sum',
        period: Duration.minutes(5)
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    });

    new CfnOutput(this, 'AlertsTopicArn', { value: this.topic.topicArn });
    new CfnOutput(this, 'EventBusArn', { value: this.bus.eventBusArn });
  }
}
