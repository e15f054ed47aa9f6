/**
 * Print the hub's settings of a deployed stage as shell exports, from the stacks' outputs:
 *
 *     eval "$(node --require ts-node/register/transpile-only scripts/stack-env.ts prod)"
 *
 * Uses the AWS CLI (`aws cloudformation describe-stacks`) with the caller's credentials and
 * region. The hub running in ECS does not need this: its container already has them.
 */
import { execFileSync } from 'child_process';

import { HUB_SETTINGS } from '../lib/outputs';

/** Outputs of one stack, by key (undefined when the stack does not exist). */
export type OutputsReader = (stackName: string) => Record<string, string> | undefined;

/** Read a stack's outputs with the AWS CLI. */
export const awsCliOutputs: OutputsReader = stackName => {
  let text: string;
  try {
    text = execFileSync(
      'aws',
      [
        'cloudformation',
        'describe-stacks',
        '--stack-name',
        stackName,
        '--query',
        'Stacks[0].Outputs',
        '--output',
        'json'
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }
    );
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    if (stderr.includes('does not exist')) {
      return undefined;
    }
    throw new Error(
      `aws cloudformation describe-stacks ${stackName} failed: ${stderr.trim() || error}`
    );
  }
  const outputs = (JSON.parse(text) ?? []) as { OutputKey: string; OutputValue: string }[];
  return Object.fromEntries(outputs.map(output => [output.OutputKey, output.OutputValue]));
};

/** Single-quote a value for a POSIX shell. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The `export NAME='value'` lines of a stage; throws naming what is missing. */
export function stageExports(stage: string, read: OutputsReader): string[] {
  const cache = new Map<string, Record<string, string> | undefined>();
  const lines = [`export WESTTEK_STAGE=${shellQuote(stage)}`];
  const missing: string[] = [];
  for (const setting of HUB_SETTINGS) {
    const stackName = `westtek-${stage}-${setting.stack}`;
    if (!cache.has(stackName)) {
      cache.set(stackName, read(stackName));
    }
    const value = cache.get(stackName)?.[setting.output];
    if (value === undefined) {
      if (!setting.optional) {
        missing.push(`${stackName} output ${setting.output} (${setting.env})`);
      }
      continue;
    }
    lines.push(`export ${setting.env}=${shellQuote(value)}`);
  }
  if (missing.length) {
    throw new Error(`not deployed yet? missing: ${missing.join('; ')}`);
  }
  return lines;
}

if (require.main === module) {
  const stage = process.argv[2];
  if (stage !== 'dev' && stage !== 'prod') {
    console.error('usage: stack-env.ts dev|prod');
    process.exit(2);
  }
  try {
    console.log(stageExports(stage, awsCliOutputs).join('\n'));
  } catch (error) {
    console.error(`westtek stack-env: ${(error as Error).message}`);
    process.exit(1);
  }
}
