#!/usr/bin/env node
/**
 * The CDK app: `cdk synth -c stage=dev` (the default) or `-c stage=prod`. The stage's values
 * come from the `westtek:{stage}` context object (cdk.json), over the built-in defaults.
 */
import { App } from 'aws-cdk-lib';

import { ConfigError, loadStageConfig } from '../lib/config';
import { addNagChecks, buildWestTek } from '../lib/westtek';

const app = new App();
try {
  buildWestTek(app, loadStageConfig(app.node));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`westtek infra: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
addNagChecks(app);
app.synth();
