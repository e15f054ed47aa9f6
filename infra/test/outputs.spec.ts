/**
 * The contract with hub_config: every WESTTEK_* setting is a stack output (read by
 * scripts/stack-env.ts) and an environment variable of the hub container, and the README
 * documents each one.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { HUB_SETTINGS } from '../lib/outputs';
import { OutputsReader, stageExports } from '../scripts/stack-env';
import { STAGES, synthStage } from './stage';

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

for (const stage of STAGES) {
  describe(`hub settings (${stage})`, () => {
    const synthesized = synthStage(stage);
    const { json, world, stacks } = synthesized;

    /** A reader over the synthesized templates, standing in for describe-stacks. */
    const reader: OutputsReader = stackName => {
      const part = stackName.replace(`westtek-${stage}-`, '');
      const template = json[part];
      if (!template) {
        return undefined;
      }
      return Object.fromEntries(
        Object.entries<any>(template.Outputs ?? {}).map(([key, output]) => [
          key,
          String(world.resolve(output.Value, stackName))
        ])
      );
    };

    it('outputs every setting from the stack it names', () => {
      for (const setting of HUB_SETTINGS) {
        const outputs = json[setting.stack]?.Outputs ?? {};
        if (setting.optional && !json[setting.stack]) {
          continue;
        }
        assert.ok(setting.output in outputs, `${setting.stack} ${setting.output}`);
      }
    });

    it('gives the hub container every setting as an environment variable', () => {
      const environment = Object.keys(stacks.compute.hubEnvironment);
      for (const setting of HUB_SETTINGS) {
        assert.ok(environment.includes(setting.env), setting.env);
      }
    });

    it('exports every setting from the outputs, shell-quoted', () => {
      const lines = stageExports(stage, reader);
      const exported = lines.map(line => /^export (\w+)=/.exec(line)![1]);
      const expected = HUB_SETTINGS.filter(setting => !setting.optional || json[setting.stack]).map(
        setting => setting.env
      );
      assert.deepEqual(exported.slice(1).sort(), expected.sort());
      const labs = lines.find(line => line.startsWith('export WESTTEK_LABS='))!;
      assert.match(labs, /^export WESTTEK_LABS='\[\{"id":"vault-1",/);
    });

    it('says which outputs are missing when a stack is not deployed', () => {
      assert.throws(
        () => stageExports(stage, name => (name.endsWith('-identity') ? undefined : reader(name))),
        /westtek-\w+-identity output UserPoolId \(WESTTEK_COGNITO_USER_POOL_ID\)/
      );
    });
  });
}

describe('the README', () => {
  it('documents every setting and its output', () => {
    for (const setting of HUB_SETTINGS) {
      const row = new RegExp(
        `\\| \`${setting.env}\` +\\| ${setting.stack} \`${setting.output}\` +\\|`
      );
      assert.match(README, row, setting.env);
    }
  });

  it("mentions every variable of the hub container's environment", () => {
    for (const name of Object.keys(synthStage('prod').stacks.compute.hubEnvironment)) {
      assert.ok(README.includes(name), name);
    }
  });
});
