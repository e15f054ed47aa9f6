/**
 * Synthesizes a stage for the tests, once per test process: the app as `bin/westtek.ts`
 * builds it (cdk.json's feature flags, cdk-nag's AwsSolutions pack), with lab ids chosen so
 * that one is a prefix of another (`vault-1`, `vault-13`), the case a careless prefix
 * pattern gets wrong.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

import { IStageConfig, StageName, loadStageConfig } from '../lib/config';
import { IWestTekStacks, addNagChecks, allStacks, buildWestTek } from '../lib/westtek';
import { IamWorld } from './iam-eval';

/** cdk.json, as the CLI reads it. */
export const CDK_JSON = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'));

/** The labs of the test stages. */
export const TEST_LABS = [
  { id: 'vault-1', adGroup: 'WestTek-Vault1' },
  { id: 'vault-13', adGroup: 'WestTek-Vault13' },
  { id: 'vault-101' }
];

/** Context of a test stage: cdk.json's, with the test labs and real-looking values. */
export function testContext(
  stage: StageName,
  overrides: Record<string, unknown> = {}
): Record<string, unknown> {
  const base = CDK_JSON.context[`westtek:${stage}`];
  return {
    ...CDK_JSON.context,
    stage,
    [`westtek:${stage}`]: {
      ...base,
      labs: TEST_LABS,
      hubDomainName: `hub.${stage}.westtek.test`,
      certificateArn: `arn:aws:acm:us-east-1:111122223333:certificate/${stage}`,
      ...(stage === 'prod' ? { samlMetadataUrl: 'https://adfs.westtek.test/metadata.xml' } : {}),
      ...overrides
    }
  };
}

/** A synthesized stage: its config, stacks, templates and IAM world. */
export interface ISynthesizedStage {
  readonly config: IStageConfig;
  readonly stacks: IWestTekStacks;
  /** Templates by stack part (`network`, `storage`, ...). */
  readonly templates: Record<string, Template>;
  /** Raw template JSON by stack part. */
  readonly json: Record<string, any>;
  readonly world: IamWorld;
  /** Violations of the validation plugins: cdk-nag and CloudFormation's own checks (none when clean). */
  readonly violations: string[];
  /** Seconds the synthesis took. */
  readonly seconds: number;
}

const cache = new Map<string, ISynthesizedStage>();

/** Synthesize a stage (cached per process and per overrides). */
export function synthStage(
  stage: StageName,
  overrides: Record<string, unknown> = {}
): ISynthesizedStage {
  const key = `${stage}:${JSON.stringify(overrides)}`;
  const cached = cache.get(key);
  if (cached) {
    return cached;
  }
  const started = process.hrtime.bigint();
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `westtek-${stage}-`));
  const app = new App({ outdir, context: testContext(stage, overrides) });
  const config = loadStageConfig(app.node);
  const stacks = buildWestTek(app, config);
  addNagChecks(app);

  let assembly;
  try {
    assembly = app.synth();
  } catch (error) {
    if (!fs.existsSync(path.join(outdir, 'validation-report.json'))) {
      throw error;
    }
    assembly = undefined; // the report says why; the templates are still written
  }
  const violations: string[] = [];
  const report = path.join(outdir, 'validation-report.json');
  if (fs.existsSync(report)) {
    for (const plugin of JSON.parse(fs.readFileSync(report, 'utf8')).pluginReports) {
      for (const violation of plugin.violations) {
        for (const construct of violation.violatingConstructs) {
          violations.push(
            `${plugin.pluginName} ${violation.ruleName} at ${construct.constructPath}`
          );
        }
      }
    }
  }

  const templates: Record<string, Template> = {};
  const json: Record<string, any> = {};
  const worldStacks = [];
  for (const stack of allStacks(stacks)) {
    const part = stack.stackName.replace(`westtek-${stage}-`, '');
    const file = path.join(outdir, stack.templateFile);
    const template = assembly
      ? assembly.getStackByName(stack.stackName).template
      : JSON.parse(fs.readFileSync(file, 'utf8'));
    json[part] = template;
    templates[part] = Template.fromJSON(template);
    worldStacks.push({ name: stack.stackName, region: stack.region, template });
  }
  const result: ISynthesizedStage = {
    config,
    stacks,
    templates,
    json,
    world: new IamWorld(worldStacks),
    violations,
    seconds: Number(process.hrtime.bigint() - started) / 1e9
  };
  fs.rmSync(outdir, { recursive: true, force: true });
  cache.set(key, result);
  return result;
}

/** Both stages. */
export const STAGES: StageName[] = ['dev', 'prod'];

/** Resources of a type in a template, as `[logicalId, resource]` pairs. */
export function resourcesOf(template: any, type: string): [string, any][] {
  return Object.entries<any>(template.Resources ?? {}).filter(
    ([, resource]) => resource.Type === type
  );
}
