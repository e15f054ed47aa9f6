/**
 * Both stages synthesize clean: cdk-nag's AwsSolutions pack (every remaining finding
 * acknowledged in code, with its reason) and CloudFormation's own template checks. And the
 * check is live: the same plugin setup rejects a non-compliant bucket.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';

import { addNagChecks } from '../lib/westtek';
import { STAGES, synthStage } from './stage';

describe('validation', () => {
  for (const stage of STAGES) {
    it(`finds nothing to report in ${stage}`, () => {
      assert.deepEqual(synthStage(stage).violations, []);
    });
  }

  it('rejects what AwsSolutions forbids (the check is not vacuous)', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'westtek-nag-'));
    try {
      const app = new App({ outdir });
      new s3.Bucket(new Stack(app, 'Careless'), 'Open', { enforceSSL: false });
      addNagChecks(app);
      assert.throws(() => quietly(() => app.synth()), /Validation failed/);
      const report = JSON.parse(
        fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')
      );
      const rules = report.pluginReports.flatMap((plugin: any) =>
        plugin.violations.map((v: any) => v.ruleName)
      );
      assert.ok(rules.includes('AwsSolutions-S1'), rules.join(', '));
      assert.ok(rules.includes('AwsSolutions-S10'), rules.join(', '));
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});

/** Run `fn` without its console output (the report it prints is the expected failure). */
function quietly<T>(fn: () => T): T {
  const { error, log, warn } = console;
  const write = process.stderr.write;
  console.error = console.log = console.warn = () => undefined;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return fn();
  } finally {
    Object.assign(console, { error, log, warn });
    process.stderr.write = write;
  }
}
