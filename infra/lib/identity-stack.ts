/**
 * Identity: the Cognito user pool the hub signs researchers in with (OAuth 2 / OIDC), federated
 * with Active Directory over SAML; the app client of the hub's GenericOAuthenticator; one
 * Cognito group per lab (and one for hub admins). AD group membership arrives in the
 * `custom:ad_groups` attribute; the hub maps it to labs with the `Labs` output.
 */
import { CfnOutput, Duration, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';

import { IStageConfig } from './config';
import { labsSetting } from './names';
import { dataRemovalPolicy } from './storage-stack';

/** The Cognito group of hub administrators. */
export const ADMIN_GROUP = 'westtek-admins';
/** The user-pool attribute that carries a federated user's AD groups. */
export const AD_GROUPS_ATTRIBUTE = 'ad_groups';
/** Name of the SAML identity provider in the user pool. */
export const SAML_PROVIDER_NAME = 'ActiveDirectory';

/** Properties of the identity stack. */
export interface IIdentityStackProps extends StackProps {
  /** The stage's configuration. */
  readonly config: IStageConfig;
}

/** The user pool, its AD federation, the hub's app client and the lab groups. */
export class IdentityStack extends Stack {
  /** The user pool. */
  readonly userPool: cognito.UserPool;
  /** The hub's OAuth app client (with a secret, authorization-code flow). */
  readonly hubClient: cognito.UserPoolClient;
  /** The hosted-UI domain. */
  readonly domain: cognito.UserPoolDomain;

  constructor(scope: Construct, id: string, props: IIdentityStackProps) {
    super(scope, id, props);
    const { config } = props;
    const plus = config.stage === 'prod';

    this.userPool = new cognito.UserPool(this, 'UserPool', {
      userPoolName: `westtek-${config.stage}`,
      selfSignUpEnabled: false,
      signInAliases: { username: true, email: true },
      // Applies to the few native users (break-glass admins); AD users authenticate, MFA
      // included, at their identity provider.
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3)
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      customAttributes: {
        [AD_GROUPS_ATTRIBUTE]: new cognito.StringAttribute({ maxLen: 2048, mutable: true })
      },
      featurePlan: plus ? cognito.FeaturePlan.PLUS : cognito.FeaturePlan.ESSENTIALS,
      ...(plus
        ? { standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION }
        : {}),
      deletionProtection: config.deletionProtection,
      removalPolicy: dataRemovalPolicy(config)
    });
    if (!plus) {
      Validations.of(this.userPool).acknowledge({
        id: 'AwsSolutions-COG8',
        reason:
          'dev runs on the Essentials plan to save cost; prod uses Plus with full threat protection.'
      });
    }

    const providers: cognito.UserPoolClientIdentityProvider[] = [];
    let saml: cognito.UserPoolIdentityProviderSaml | undefined;
    if (config.samlMetadataUrl) {
      saml = new cognito.UserPoolIdentityProviderSaml(this, 'ActiveDirectory', {
        userPool: this.userPool,
        name: SAML_PROVIDER_NAME,
        metadata: cognito.UserPoolIdentityProviderSamlMetadata.url(config.samlMetadataUrl),
        idpSignout: true,
        attributeMapping: {
          email: cognito.ProviderAttribute.other(
            'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'
          ),
          preferredUsername: cognito.ProviderAttribute.other(
            'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name'
          ),
          custom: {
            [`custom:${AD_GROUPS_ATTRIBUTE}`]: cognito.ProviderAttribute.other(
              config.samlGroupsAttribute
            )
          }
        }
      });
      providers.push(cognito.UserPoolClientIdentityProvider.custom(SAML_PROVIDER_NAME));
    }
    // Without AD (a dev stage), native users sign in; with AD, only break-glass admins do.
    providers.push(cognito.UserPoolClientIdentityProvider.COGNITO);

    this.domain = this.userPool.addDomain('Domain', {
      cognitoDomain: { domainPrefix: config.cognitoDomainPrefix },
      managedLoginVersion: cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN
    });

    const hubUrl = `https://${config.hubDomainName}`;
    this.hubClient = this.userPool.addClient('HubClient', {
      userPoolClientName: 'westtek-hub',
      generateSecret: true,
      authFlows: {},
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
        callbackUrls: [`${hubUrl}/hub/oauth_callback`],
        logoutUrls: [`${hubUrl}/hub/login`]
      },
      supportedIdentityProviders: providers,
      preventUserExistenceErrors: true,
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(1),
      enableTokenRevocation: true
    });
    if (saml) {
      this.hubClient.node.addDependency(saml);
    }

    new cognito.CfnUserPoolGroup(this, 'AdminGroup', {
      userPoolId: this.userPool.userPoolId,
      groupName: ADMIN_GROUP,
      description: 'West Tek hub administrators'
    });
    for (const lab of config.labs) {
      new cognito.CfnUserPoolGroup(this, `LabGroup-${lab.id}`, {
        userPoolId: this.userPool.userPoolId,
        groupName: lab.id,
        description: lab.adGroup
          ? `West Tek lab ${lab.id} (AD group ${lab.adGroup})`
          : `West Tek lab ${lab.id}`
      });
    }

    const authBase = this.domain.baseUrl();
    const outputs: Record<string, string> = {
      UserPoolId: this.userPool.userPoolId,
      UserPoolArn: this.userPool.userPoolArn,
      HubClientId: this.hubClient.userPoolClientId,
      OAuthAuthorizeUrl: `${authBase}/oauth2/authorize`,
      OAuthTokenUrl: `${authBase}/oauth2/token`,
      OAuthUserdataUrl: `${authBase}/oauth2/userInfo`,
      OAuthCallbackUrl: `${hubUrl}/hub/oauth_callback`,
      Labs: Stack.of(this).toJsonString(labsSetting(config.labs)),
      HubAdminAdGroups: Stack.of(this).toJsonString(config.hubAdminAdGroups ?? [])
    };
    for (const [name, value] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value });
    }
  }
}
