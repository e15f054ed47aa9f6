/**
 * The stack's side of the contract test with the Python code (tests/e2e/test_aws_contract.py),
 * run as `node --require ts-node/register/transpile-only test/contract-cli.ts <command> <stage>`:
 *
 * - `describe`: the synthesized stage's containers — the hub's and the notebook template's
 *   environment (intrinsics resolved as the IAM evaluator resolves them) and secret names —
 *   and the stage's labs, printed as JSON;
 * - `decide <requests.json>`: for each recorded AWS request `{principal: "hub" | "notebook",
 *   lab, action, resource, context}`, whether that role's synthesized policies (identity and
 *   bucket policies, conditions included) allow it, by the evaluator in iam-eval.ts.
 */
import fs from 'node:fs';

import { NOTEBOOK_ROLE_TAG, TAG_KEYS } from '../lib/names';
import { IRequest, IRoleModel } from './iam-eval';
import { ISynthesizedStage, STAGES, resourcesOf, synthStage } from './stage';

type StageName = (typeof STAGES)[number];

/** A recorded request, as the Python side writes it. */
interface IRecordedRequest extends IRequest {
  readonly principal: 'hub' | 'notebook';
  readonly lab?: string;
}

interface IContainer {
  readonly environment: Record<string, string>;
  readonly secrets: string[];
}

/** The environment and secret names of the container `name` of the compute stack. */
function container(synthesized: ISynthesizedStage, stage: string, name: string): IContainer {
  const stack = `westtek-${stage}-compute`;
  for (const [, definition] of resourcesOf(synthesized.json.compute, 'AWS::ECS::TaskDefinition')) {
    for (const found of definition.Properties.ContainerDefinitions ?? []) {
      if (found.Name !== name) {
        continue;
      }
      const environment: Record<string, string> = {};
      for (const variable of found.Environment ?? []) {
        environment[variable.Name] = String(synthesized.world.resolve(variable.Value, stack));
      }
      return {
        environment,
        secrets: (found.Secrets ?? []).map((secret: { Name: string }) => secret.Name)
      };
    }
  }
  throw new Error(`contract: no container ${name} in ${stack}`);
}

function roleOf(synthesized: ISynthesizedStage, stage: string, request: IRecordedRequest) {
  const { world } = synthesized;
  if (request.principal === 'hub') {
    return world.role(`westtek-${stage}-compute`, 'HubTaskRole');
  }
  const roles: IRoleModel[] = world.rolesTagged({
    [TAG_KEYS.labId]: String(request.lab),
    [TAG_KEYS.role]: NOTEBOOK_ROLE_TAG
  });
  if (roles.length !== 1) {
    throw new Error(`contract: ${roles.length} notebook roles for lab ${request.lab}`);
  }
  return roles[0];
}

function main(argv: string[]): void {
  const [command, stageArg, file] = argv;
  if (!STAGES.includes(stageArg as StageName)) {
    throw new Error(`contract: unknown stage ${stageArg} (one of ${STAGES.join(', ')})`);
  }
  const stage = stageArg as StageName;
  const synthesized = synthStage(stage);
  if (command === 'describe') {
    const output = {
      stage,
      region: synthesized.config.region,
      labs: synthesized.config.labs,
      bedrockModelIds: synthesized.config.bedrockModelIds,
      hub: container(synthesized, stage, 'hub'),
      notebook: container(synthesized, stage, 'notebook')
    };
    process.stdout.write(JSON.stringify(output));
  } else if (command === 'decide') {
    const requests: IRecordedRequest[] = JSON.parse(fs.readFileSync(file, 'utf8'));
    const decisions = requests.map(request =>
      synthesized.world.decide(roleOf(synthesized, stage, request), request)
    );
    process.stdout.write(JSON.stringify(decisions));
  } else {
    throw new Error(`contract: unknown command ${command} (describe or decide)`);
  }
}

main(process.argv.slice(2));
