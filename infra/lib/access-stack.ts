/**
 * Access: an Amazon WorkSpaces Secure Browser portal whose start page is the hub. Researchers
 * sign in with AD (SAML); sessions run in the VPC's app subnets, may browse only the hub, the
 * Cognito sign-in pages and the identity provider, and may not download or print, so lab data
 * stays in AWS.
 */
import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as workspacesweb from 'aws-cdk-lib/aws-workspacesweb';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { ISecurityGroups, SUBNETS } from './network-stack';

/** Properties of the access stack. */
export interface IAccessStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
  /** The VPC the sessions run in. */
  readonly vpc: ec2.IVpc;
  /** The deployment's security groups. */
  readonly securityGroups: ISecurityGroups;
  /** Host name of the Cognito hosted UI (e.g. `prefix.auth.region.amazoncognito.com`). */
  readonly cognitoHost: string;
}

/**
 * The Chrome policy of the portal's sessions: open the hub at start, allow only the hub, the
 * sign-in pages and the identity provider.
 */
export function browserPolicy(hubUrl: string, allowedHosts: string[]): string {
  return JSON.stringify({
    chromePolicies: {
      RestoreOnStartup: { value: 4 },
      RestoreOnStartupURLs: { value: [hubUrl] },
      HomepageLocation: { value: hubUrl },
      URLBlocklist: { value: ['*'] },
      URLAllowlist: { value: allowedHosts }
    }
  });
}

/** The Secure Browser portal. */
export class AccessStack extends Stack {
  /** The portal. */
  readonly portal: workspacesweb.CfnPortal;

  constructor(scope: Construct, id: string, props: IAccessStackProps) {
    super(scope, id, props);
    const { config } = props;
    const hubUrl = `https://${config.hubDomainName}/hub/`;
    const allowed = [config.hubDomainName, props.cognitoHost];
    if (config.samlMetadataUrl) {
      allowed.push(new URL(config.samlMetadataUrl).hostname);
    }

    const network = new workspacesweb.CfnNetworkSettings(this, 'Network', {
      vpcId: props.vpc.vpcId,
      subnetIds: props.vpc.selectSubnets({ subnetGroupName: SUBNETS.app }).subnetIds,
      securityGroupIds: [props.securityGroups.secureBrowser.securityGroupId]
    });
    const browser = new workspacesweb.CfnBrowserSettings(this, 'Browser', {
      browserPolicy: Stack.of(this).toJsonString(JSON.parse(browserPolicy(hubUrl, allowed)))
    });
    const user = new workspacesweb.CfnUserSettings(this, 'User', {
      copyAllowed: 'Enabled',
      pasteAllowed: 'Enabled',
      downloadAllowed: 'Disabled',
      uploadAllowed: 'Enabled',
      printAllowed: 'Disabled',
      disconnectTimeoutInMinutes: 60,
      idleDisconnectTimeoutInMinutes: 30
    });
    this.portal = new workspacesweb.CfnPortal(this, 'Portal', {
      displayName: `West Tek ${config.stage}`,
      authenticationType: 'Standard',
      networkSettingsArn: network.attrNetworkSettingsArn,
      browserSettingsArn: browser.attrBrowserSettingsArn,
      userSettingsArn: user.attrUserSettingsArn
    });
    new workspacesweb.CfnIdentityProvider(this, 'ActiveDirectory', {
      portalArn: this.portal.attrPortalArn,
      identityProviderName: 'ActiveDirectory',
      identityProviderType: 'SAML',
      identityProviderDetails: { MetadataURL: config.samlMetadataUrl ?? '' }
    });

    new CfnOutput(this, 'PortalUrl', { value: `https://${this.portal.attrPortalEndpoint}` });
    new CfnOutput(this, 'PortalArn', {
      description:
        'aws workspaces-web get-portal-service-provider-metadata --portal-arn … gives AD its SAML metadata',
      value: this.portal.attrPortalArn
    });
  }
}
