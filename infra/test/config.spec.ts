/**
 * Stage configuration: defaults per stage, context overrides, and a clear error for every
 * value that would make a broken deployment.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ConfigError, IContextSource, isExampleValue, loadStageConfig } from '../lib/config';
import { CDK_JSON } from './stage';

function context(values: Record<string, unknown>): IContextSource {
  return { tryGetContext: key => values[key] };
}

const MINIMAL = {
  labs: [{ id: 'vault-13' }],
  hubDomainName: 'hub.westtek.test',
  certificateArn: 'arn:aws:acm:us-east-1:111122223333:certificate/x',
  cognitoDomainPrefix: 'westtek-test'
};

describe('stage configuration', () => {
  it('defaults to dev: one NAT, single-AZ database, data destroyed with the stack', () => {
    const config = loadStageConfig(context({ 'westtek:dev': MINIMAL }));
    assert.equal(config.stage, 'dev');
    assert.equal(config.natGateways, 1);
    assert.equal(config.databaseMultiAz, false);
    assert.equal(config.retainData, false);
    assert.equal(config.deletionProtection, false);
  });

  it('makes prod multi-AZ, retained and deletion-protected', () => {
    const config = loadStageConfig(
      context({
        stage: 'prod',
        'westtek:prod': { ...MINIMAL, samlMetadataUrl: 'https://idp.test/m.xml' }
      })
    );
    assert.equal(config.natGateways, 2);
    assert.equal(config.databaseMultiAz, true);
    assert.equal(config.retainData, true);
    assert.equal(config.deletionProtection, true);
    assert.equal(config.secureBrowser, true);
  });

  it('lets the context override any default', () => {
    const config = loadStageConfig(
      context({ 'westtek:dev': { ...MINIMAL, natGateways: 2, region: 'eu-west-1' } })
    );
    assert.equal(config.natGateways, 2);
    assert.equal(config.region, 'eu-west-1');
  });

  it('ships a cdk.json whose both stages load', () => {
    for (const stage of ['dev', 'prod']) {
      const config = loadStageConfig(context(CDK_JSON.context), stage);
      assert.equal(config.stage, stage);
      assert.ok(
        isExampleValue(config.hubDomainName),
        'cdk.json holds example values, flagged as such'
      );
    }
  });

  const rejects: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown stage', { stage: 'staging' }, /"dev" or "prod"/],
    ['missing values', { 'westtek:dev': { labs: MINIMAL.labs } }, /needs "hubDomainName"/],
    ['no labs', { 'westtek:dev': { ...MINIMAL, labs: [] } }, /needs "labs"/],
    [
      'a lab id that is not a plain name',
      { 'westtek:dev': { ...MINIMAL, labs: [{ id: 'Vault 13/' }] } },
      /lab id/
    ],
    [
      'more labs than the bucket policy holds',
      {
        'westtek:dev': {
          ...MINIMAL,
          labs: Array.from({ length: 36 }, (_, i) => ({ id: `lab-${i}` }))
        }
      },
      /at most 35 labs/
    ],
    [
      'a lab listed twice',
      { 'westtek:dev': { ...MINIMAL, labs: [{ id: 'a' }, { id: 'a' }] } },
      /listed twice/
    ],
    [
      'a certificate that is not ACM',
      { 'westtek:dev': { ...MINIMAL, certificateArn: 'cert' } },
      /ACM certificate/
    ],
    [
      'Secure Browser without AD',
      { 'westtek:dev': { ...MINIMAL, secureBrowser: true } },
      /samlMetadataUrl/
    ],
    ['no NAT', { 'westtek:dev': { ...MINIMAL, natGateways: 0 } }, /natGateways/],
    ['a bad region', { 'westtek:dev': { ...MINIMAL, region: 'mars' } }, /region/],
    [
      'replicating into the same region',
      { 'westtek:dev': { ...MINIMAL, replicaRegion: 'us-east-1' } },
      /replicaRegion/
    ],
    [
      'the removed Bedrock agents',
      { 'westtek:dev': { ...MINIMAL, bedrockAgents: true } },
      /"bedrockAgents" was removed/
    ],
    [
      'an alert phone number that is not E.164',
      { 'westtek:dev': { ...MINIMAL, labs: [{ id: 'a', alertSms: ['555-0100'] }] } },
      /alertSms "555-0100" is not an E.164 number/
    ],
    [
      'an alert address that is not one',
      { 'westtek:dev': { ...MINIMAL, labs: [{ id: 'a', alertEmails: ['pi'] }] } },
      /alertEmails "pi" is not an e-mail address/
    ]
  ];
  for (const [what, values, message] of rejects) {
    it(`rejects ${what}`, () => {
      assert.throws(
        () => loadStageConfig(context(values)),
        (error: unknown) => error instanceof ConfigError && message.test(error.message)
      );
    });
  }
});
