/**
 * The hub's least privilege, on both stages: it runs, stops and describes notebook tasks only
 * in its own cluster and only of the notebook family, passes only the notebook roles (to ECS
 * only), creates only tagged access points, and reads but never writes snapshots.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { clusterName } from '../lib/compute-stack';
import { NOTEBOOK_ROLE_TAG, TAG_KEYS, auditBucketName, snapshotBucketName } from '../lib/names';
import { ACCOUNT, IRoleModel } from './iam-eval';
import { STAGES, synthStage } from './stage';

for (const stage of STAGES) {
  describe(`hub permissions (${stage})`, () => {
    const synthesized = synthStage(stage);
    const { world, config } = synthesized;
    const computeStack = `westtek-${stage}-compute`;
    const hub = world.role(computeStack, 'HubTaskRole');
    const region = config.region;
    const ecsArn = (resource: string) => `arn:aws:ecs:${region}:${ACCOUNT}:${resource}`;
    const ownCluster = world.resolve(
      { 'Fn::GetAtt': [logicalId(synthesized.json.compute, 'AWS::ECS::Cluster'), 'Arn'] },
      computeStack
    );
    const otherCluster = ecsArn('cluster/somebody-elses');
    const family = config.notebookTaskFamily;
    const notebookRoles = world.rolesTagged({ [TAG_KEYS.role]: NOTEBOOK_ROLE_TAG });
    const executionRole = world.role(computeStack, 'NotebookExecutionRole');

    it('runs only notebook-family revisions, only in its own cluster', () => {
      const run = (taskDefinition: string, cluster: string) =>
        world.decide(hub, {
          action: 'ecs:RunTask',
          resource: ecsArn(`task-definition/${taskDefinition}`),
          context: { 'ecs:cluster': cluster }
        });
      assert.ok(run(`${family}:1`, ownCluster));
      assert.ok(run(`${family}:42`, ownCluster));
      assert.equal(run(`${family}:1`, otherCluster), false, 'another cluster');
      assert.equal(run('westtek-prod-hub:3', ownCluster), false, "the hub's own family");
      assert.equal(run(`${family}-evil:1`, ownCluster), false, 'a family that merely starts alike');
      assert.equal(
        world.decide(hub, {
          action: 'ecs:RunTask',
          resource: ecsArn(`task-definition/${family}:1`)
        }),
        false,
        'a request without a cluster'
      );
    });

    it('stops and describes tasks only in its own cluster', () => {
      const own = ecsArn(`task/${clusterName(stage)}/0123456789abcdef`);
      for (const action of ['ecs:StopTask', 'ecs:DescribeTasks']) {
        assert.ok(
          world.decide(hub, { action, resource: own, context: { 'ecs:cluster': ownCluster } }),
          action
        );
        assert.equal(
          world.decide(hub, {
            action,
            resource: ecsArn('task/other/0123'),
            context: { 'ecs:cluster': otherCluster }
          }),
          false,
          `${action} elsewhere`
        );
        assert.equal(
          world.decide(hub, { action, resource: own, context: { 'ecs:cluster': otherCluster } }),
          false
        );
      }
      for (const action of [
        'ecs:UpdateService',
        'ecs:DeleteCluster',
        'ecs:ExecuteCommand',
        'ecs:StartTask'
      ]) {
        assert.equal(
          world.decide(hub, {
            action,
            resource: ownCluster,
            context: { 'ecs:cluster': ownCluster }
          }),
          false,
          action
        );
      }
    });

    it('conditions every task action on its cluster', () => {
      for (const statement of hub.statements) {
        const actions = [statement.Action ?? []].flat();
        if (
          actions.some(action =>
            ['ecs:RunTask', 'ecs:StopTask', 'ecs:DescribeTasks'].includes(action)
          )
        ) {
          assert.equal(statement.Condition?.ArnEquals?.['ecs:cluster'], ownCluster, statement.Sid);
        }
      }
    });

    it('passes only the notebook roles, and only to ECS tasks', () => {
      const pass = (role: IRoleModel, service = 'ecs-tasks.amazonaws.com') =>
        world.decide(hub, {
          action: 'iam:PassRole',
          resource: role.arn,
          context: { 'iam:PassedToService': service }
        });
      assert.equal(notebookRoles.length, config.labs.length);
      for (const role of [...notebookRoles, executionRole]) {
        assert.ok(pass(role), role.id);
        assert.equal(pass(role, 'lambda.amazonaws.com'), false, `${role.id} to Lambda`);
      }
      const others = [...world.roles.values()].filter(
        role => !notebookRoles.includes(role) && role !== executionRole
      );
      assert.ok(others.includes(hub));
      for (const role of others) {
        assert.equal(pass(role), false, role.id);
      }
      assert.equal(
        world.decide(hub, {
          action: 'iam:PassRole',
          resource: `arn:aws:iam::${ACCOUNT}:role/Admin`,
          context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }
        }),
        false
      );
    });

    it('creates EFS access points only with lab and researcher tags', () => {
      const fileSystem = world.resolve(
        { 'Fn::GetAtt': [logicalId(synthesized.json.storage, 'AWS::EFS::FileSystem'), 'Arn'] },
        `westtek-${stage}-storage`
      );
      const create = (tags: Record<string, string>) =>
        world.decide(hub, {
          action: 'elasticfilesystem:CreateAccessPoint',
          resource: fileSystem,
          context: Object.fromEntries(
            Object.entries(tags).map(([key, value]) => [`aws:RequestTag/${key}`, value])
          )
        });
      assert.ok(create({ lab_id: 'vault-13', researcher_id: 'alice' }));
      assert.equal(create({ researcher_id: 'alice' }), false);
      assert.equal(create({ lab_id: 'vault-13' }), false);
      for (const action of [
        'elasticfilesystem:DeleteFileSystem',
        'elasticfilesystem:ClientRootAccess',
        'elasticfilesystem:PutFileSystemPolicy'
      ]) {
        assert.equal(world.decide(hub, { action, resource: fileSystem }), false, action);
      }
    });

    it("reads every lab's snapshots and only adds to them (a shared snapshot's copy)", () => {
      const bucket = `arn:aws:s3:::${snapshotBucketName(stage, ACCOUNT, region)}`;
      assert.ok(
        world.decide(hub, {
          action: 's3:GetObject',
          resource: `${bucket}/labs/vault-13/snapshots/x.json`
        })
      );
      assert.ok(
        world.decide(hub, {
          action: 's3:ListBucket',
          resource: bucket,
          context: { 's3:prefix': 'labs/vault-1/' }
        })
      );
      for (const action of ['s3:PutObject', 's3:AbortMultipartUpload']) {
        assert.ok(
          world.decide(hub, { action, resource: `${bucket}/labs/vault-101/data/ab` }),
          action
        );
      }
      assert.ok(
        world.decide(hub, {
          action: 's3:DeleteObject',
          resource: `${bucket}/labs/vault-101/locks/0123abcd`
        })
      );
      for (const [action, key] of [
        ['s3:DeleteObject', 'labs/vault-13/snapshots/x'],
        ['s3:DeleteObject', 'labs/vault-13/data/ab'],
        ['s3:PutObject', 'elsewhere/x'],
        ['s3:AbortMultipartUpload', 'elsewhere/x'],
        ['s3:PutBucketPolicy', 'labs/vault-13/x'],
        ['s3:DeleteObjectVersion', 'labs/vault-13/locks/x']
      ]) {
        assert.equal(
          world.decide(hub, { action, resource: `${bucket}/${key}` }),
          false,
          `${action} ${key}`
        );
      }
    });

    it("keeps each lab's memory in its own scope of the lab's knowledge-base documents", () => {
      const bucket = `arn:aws:s3:::${snapshotBucketName(stage, ACCOUNT, region)}`;
      const memory = `${bucket}/labs/vault-13/kb/env/lab%20memory/notebook/bob%2Fa.ipynb/f1/0.md`;
      for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:GetObject']) {
        assert.ok(world.decide(hub, { action, resource: memory }), action);
      }
      // a server's live-workspace documents beside it are never the hub's to delete
      const server = `${bucket}/labs/vault-13/kb/env/bob/notebook/a.ipynb/f1/0.md`;
      assert.equal(world.decide(hub, { action: 's3:DeleteObject', resource: server }), false);
    });

    it('adds and reads the heads of its audit chain, and can neither delete nor unlock one', () => {
      const bucket = `arn:aws:s3:::${auditBucketName(stage, ACCOUNT, region)}`;
      const head = `${bucket}/audit/${stage}/heads/9999999999999999998`;
      for (const action of ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObjectVersion']) {
        assert.ok(world.decide(hub, { action, resource: head }), action);
      }
      assert.ok(
        world.decide(hub, {
          action: 's3:ListBucketVersions',
          resource: bucket,
          context: { 's3:prefix': `audit/${stage}/heads/` }
        })
      );
      for (const action of [
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:BypassGovernanceRetention',
        's3:PutBucketObjectLockConfiguration',
        's3:PutLifecycleConfiguration'
      ]) {
        assert.equal(world.decide(hub, { action, resource: head }), false, action);
      }
    });

    it('has no AWS-managed policies and no wildcard actions', () => {
      assert.deepEqual(hub.managedPolicyArns, []);
      for (const statement of hub.statements) {
        for (const action of [statement.Action ?? []].flat()) {
          assert.ok(!action.includes('*'), `${statement.Sid}: ${action}`);
        }
        assert.equal(statement.NotAction, undefined);
        assert.equal(statement.NotResource, undefined);
      }
    });

    it('trusts only ECS tasks of its own account', () => {
      for (const role of [hub, executionRole, ...notebookRoles]) {
        assert.equal(role.trust.length, 1, role.id);
        const [trust] = role.trust;
        assert.deepEqual(trust.Principal, { Service: 'ecs-tasks.amazonaws.com' });
        assert.equal(trust.Condition?.StringEquals?.['aws:SourceAccount'], ACCOUNT, role.id);
      }
    });
  });
}

/** The logical id of the only resource of a type in a template. */
function logicalId(template: any, type: string): string {
  const ids = Object.entries<any>(template.Resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([id]) => id);
  assert.equal(ids.length, 1, `one ${type}`);
  return ids[0];
}
