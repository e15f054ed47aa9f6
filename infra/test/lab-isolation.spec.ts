/**
 * Lab isolation: a notebook task of one lab can never read, write or list another lab's
 * snapshots (`labs/{lab_id}/`), nor retrieve from another lab's knowledge base, on both
 * stages. Each layer is checked alone: the notebook role's own policy, and the bucket policy
 * even if someone later attached `s3:*` on everything to a notebook role.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { NOTEBOOK_ROLE_TAG, TAG_KEYS, snapshotBucketName } from '../lib/names';
import { ACCOUNT, IRoleModel, IRequest, IStatement } from './iam-eval';
import { STAGES, TEST_LABS, synthStage } from './stage';

const OBJECT_ACTIONS = [
  's3:GetObject',
  's3:GetObjectVersion',
  's3:PutObject',
  's3:DeleteObject',
  's3:AbortMultipartUpload'
];
const S3_ALL_ON_EVERYTHING: IStatement = { Effect: 'Allow', Action: 's3:*', Resource: '*' };

for (const stage of STAGES) {
  describe(`lab isolation (${stage})`, () => {
    const synthesized = synthStage(stage);
    const { world } = synthesized;
    const bucket = snapshotBucketName(stage, ACCOUNT, synthesized.config.region);
    const object = (key: string) => `arn:aws:s3:::${bucket}/${key}`;
    const bucketArn = `arn:aws:s3:::${bucket}`;
    const list = (prefix?: string): IRequest => ({
      action: 's3:ListBucket',
      resource: bucketArn,
      context: prefix === undefined ? {} : { 's3:prefix': prefix }
    });
    const notebookRole = (labId: string): IRoleModel => {
      const roles = world.rolesTagged({
        [TAG_KEYS.labId]: labId,
        [TAG_KEYS.role]: NOTEBOOK_ROLE_TAG
      });
      assert.equal(roles.length, 1, `one notebook role for ${labId}`);
      return roles[0];
    };

    it('gives every lab exactly one notebook task role, tagged with its lab', () => {
      const notebookRoles = world.rolesTagged({ [TAG_KEYS.role]: NOTEBOOK_ROLE_TAG });
      assert.deepEqual(
        notebookRoles.map(role => role.tags[TAG_KEYS.labId]).sort(),
        TEST_LABS.map(lab => lab.id).sort()
      );
      for (const role of notebookRoles) {
        assert.deepEqual(role.managedPolicyArns, [], `${role.id} has no managed policies`);
      }
    });

    it("lets a notebook role use its own lab's prefix", () => {
      for (const lab of TEST_LABS) {
        const role = notebookRole(lab.id);
        for (const action of OBJECT_ACTIONS) {
          assert.ok(
            world.decide(role, { action, resource: object(`labs/${lab.id}/data/ab/cdef`) }),
            `${lab.id} may ${action} its own objects`
          );
        }
        assert.ok(world.decide(role, list(`labs/${lab.id}/`)), `${lab.id} may list its own prefix`);
        assert.ok(world.decide(role, list(`labs/${lab.id}/snapshots/`)));
      }
    });

    for (const lab of TEST_LABS) {
      for (const other of TEST_LABS.filter(candidate => candidate.id !== lab.id)) {
        it(`keeps ${lab.id} out of ${other.id}'s snapshots`, () => {
          const role = notebookRole(lab.id);
          const requests: IRequest[] = [
            ...OBJECT_ACTIONS.map(action => ({
              action,
              resource: object(`labs/${other.id}/data/ab/cdef`)
            })),
            list(`labs/${other.id}/`),
            list(`labs/${other.id}/snapshots/`)
          ];
          for (const request of requests) {
            const where = `${request.action} ${request.resource} ${JSON.stringify(request.context ?? {})}`;
            assert.equal(world.decide(role, request), false, `${lab.id}: ${where}`);
            // Each layer alone is enough.
            assert.equal(
              world.decide(role, request, { resourcePolicies: false }),
              false,
              `${lab.id}'s own policy must deny ${where}`
            );
            assert.equal(
              world.decide(role, request, { extraIdentityStatements: [S3_ALL_ON_EVERYTHING] }),
              false,
              `the bucket policy must deny ${where} even with s3:* granted to ${lab.id}`
            );
          }
        });
      }
    }

    it('keeps notebook roles from listing across labs or outside their prefix', () => {
      for (const lab of TEST_LABS) {
        const role = notebookRole(lab.id);
        // `labs/vault-1` without its slash would also list `labs/vault-13/` and `labs/vault-101/`.
        for (const prefix of [undefined, '', 'labs/', `labs/${lab.id}`, 'labs/vault']) {
          assert.equal(world.decide(role, list(prefix)), false, `${lab.id} lists ${prefix}`);
          assert.equal(
            world.decide(role, list(prefix), { extraIdentityStatements: [S3_ALL_ON_EVERYTHING] }),
            false,
            `bucket policy: ${lab.id} lists ${prefix}`
          );
        }
        for (const key of ['top-level-object', 'labs/orphan', `labs/${lab.id}`]) {
          assert.equal(
            world.decide(role, { action: 's3:GetObject', resource: object(key) }),
            false,
            key
          );
        }
      }
    });

    it('denies a notebook-tagged role whose lab is unknown', () => {
      const role = notebookRole(TEST_LABS[0].id);
      const stray: IRoleModel = { ...role, tags: { ...role.tags, [TAG_KEYS.labId]: 'vault-999' } };
      assert.equal(
        world.decide(
          stray,
          { action: 's3:GetObject', resource: object('labs/vault-999/x') },
          {
            extraIdentityStatements: [S3_ALL_ON_EVERYTHING]
          }
        ),
        false
      );
    });

    it('grants no notebook role IAM, wildcard actions or bucket administration', () => {
      for (const lab of TEST_LABS) {
        const role = notebookRole(lab.id);
        for (const statement of role.statements) {
          for (const action of [statement.Action ?? []].flat()) {
            assert.ok(!action.includes('*'), `${lab.id}: wildcard action ${action}`);
            assert.ok(!action.startsWith('iam:'), `${lab.id}: ${action}`);
          }
        }
        for (const action of [
          's3:PutBucketPolicy',
          's3:DeleteBucket',
          's3:PutBucketAcl',
          'iam:PassRole'
        ]) {
          assert.equal(
            world.decide(role, { action, resource: bucketArn }),
            false,
            `${lab.id}: ${action}`
          );
        }
      }
    });

    if (stage === 'prod') {
      it("keeps each lab's knowledge base to itself", () => {
        const ai = synthesized.stacks.ai!;
        const kbArns = Object.fromEntries(
          Object.entries(ai.knowledgeBases).map(([labId, kb]) => [
            labId,
            world.resolve(ai.resolve(kb.arn), ai.stackName)
          ])
        );
        assert.equal(Object.keys(kbArns).length, TEST_LABS.length);
        for (const lab of TEST_LABS) {
          const role = notebookRole(lab.id);
          for (const [kbLab, arn] of Object.entries(kbArns)) {
            for (const action of [
              'bedrock:Retrieve',
              'bedrock:StartIngestionJob',
              'bedrock:GetIngestionJob'
            ]) {
              assert.equal(
                world.decide(role, { action, resource: arn }),
                kbLab === lab.id,
                `${lab.id} may ${action} on ${kbLab}'s knowledge base`
              );
            }
          }
        }
      });

      it("lets a notebook role write and delete its own lab's knowledge-base documents only", () => {
        for (const lab of TEST_LABS) {
          const role = notebookRole(lab.id);
          const document = (labId: string) =>
            object(`labs/${labId}/kb/notebook/a%2Fb.ipynb/f1/0.md.metadata.json`);
          for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:GetObject']) {
            assert.ok(world.decide(role, { action, resource: document(lab.id) }), action);
            for (const other of TEST_LABS.filter(candidate => candidate.id !== lab.id)) {
              assert.equal(
                world.decide(role, { action, resource: document(other.id) }),
                false,
                `${lab.id} may ${action} ${other.id}'s documents`
              );
            }
          }
          assert.ok(world.decide(role, list(`labs/${lab.id}/kb/notebook/`)));
        }
      });

      it("lets a lab's knowledge base read only that lab's documents", () => {
        for (const lab of TEST_LABS) {
          const roles: IRoleModel[] = [...world.roles.values()].filter(
            role => role.stack === `westtek-${stage}-ai` && role.tags[TAG_KEYS.labId] === lab.id
          );
          assert.equal(roles.length, 1);
          const [role] = roles;
          assert.ok(
            world.decide(role, {
              action: 's3:GetObject',
              resource: object(`labs/${lab.id}/kb/a.md`)
            })
          );
          for (const other of TEST_LABS.filter(candidate => candidate.id !== lab.id)) {
            assert.equal(
              world.decide(role, {
                action: 's3:GetObject',
                resource: object(`labs/${other.id}/kb/a.md`)
              }),
              false
            );
          }
          assert.equal(
            world.decide(role, {
              action: 's3:GetObject',
              resource: object(`labs/${lab.id}/data/x`)
            }),
            false
          );
        }
      });
    }
  });
}
