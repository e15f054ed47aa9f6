/**
 * A small IAM policy evaluator over synthesized CloudFormation templates, for the tests'
 * "who can reach what" questions. It resolves intrinsics (Ref, GetAtt, Join, cross-stack
 * outputs) to stable strings, gathers each role's identity policies and tags and each
 * bucket's policy, and answers `decide(role, request)` with IAM's rules: an explicit Deny
 * anywhere wins, else an Allow is needed. Anything it does not understand (an unknown
 * condition operator, an AWS-managed policy on a role under test) throws, so a test can only
 * pass for reasons the evaluator actually checked.
 */

/** The fake account and region the templates are resolved in. */
export const ACCOUNT = '111122223333';
export const PARTITION = 'aws';

type Json = any;

/** A policy statement after intrinsic resolution. */
export interface IStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Principal?: Json;
  readonly Action?: string | string[];
  readonly NotAction?: string | string[];
  readonly Resource?: string | string[];
  readonly NotResource?: string | string[];
  readonly Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

/** A role as the templates define it. */
export interface IRoleModel {
  /** `{stack}/{logicalId}`. */
  readonly id: string;
  readonly stack: string;
  readonly logicalId: string;
  /** The resolved `Ref` (the role name placeholder) and ARN. */
  readonly ref: string;
  readonly arn: string;
  readonly tags: Record<string, string>;
  readonly managedPolicyArns: string[];
  readonly statements: IStatement[];
  readonly trust: IStatement[];
}

/** A request to decide. */
export interface IRequest {
  readonly action: string;
  readonly resource: string;
  /** Request context keys (e.g. `s3:prefix`, `ecs:cluster`). */
  readonly context?: Record<string, string | string[]>;
}

/** What to include in a decision (the tests switch layers off to check each one alone). */
export interface IDecideOptions {
  /** Evaluate resource policies (bucket policies). Default true. */
  readonly resourcePolicies?: boolean;
  /** Evaluate the role's identity policies. Default true. */
  readonly identityPolicies?: boolean;
  /** Extra identity statements, as if someone had attached them to the role. */
  readonly extraIdentityStatements?: IStatement[];
}

interface IStackTemplate {
  readonly name: string;
  readonly region: string;
  readonly template: Json;
}

/** The resolved IAM world of a set of stacks (one stage). */
export class IamWorld {
  readonly roles = new Map<string, IRoleModel>();
  /** Bucket policies by bucket name. */
  readonly bucketPolicies = new Map<string, IStatement[]>();
  private readonly stacks = new Map<string, IStackTemplate>();

  constructor(stacks: IStackTemplate[]) {
    for (const stack of stacks) {
      this.stacks.set(stack.name, stack);
    }
    for (const stack of stacks) {
      this.collectRoles(stack);
    }
    for (const stack of stacks) {
      this.collectPolicies(stack);
    }
  }

  // --- intrinsics ----------------------------------------------------------------------------

  /** Resolve a template value in the context of a stack. */
  resolve(value: Json, stackName: string): Json {
    const stack = this.stack(stackName);
    if (Array.isArray(value)) {
      return value.map(item => this.resolve(item, stackName));
    }
    if (value === null || typeof value !== 'object') {
      return value;
    }
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [fn] = keys;
      const arg = value[fn];
      switch (fn) {
        case 'Ref':
          return this.ref(arg, stack);
        case 'Fn::GetAtt': {
          const [logicalId, attribute] = Array.isArray(arg) ? arg : String(arg).split('.');
          return this.getAtt(logicalId, attribute, stack);
        }
        case 'Fn::Join': {
          const [separator, parts] = arg;
          const resolved = this.resolve(parts, stackName);
          return (resolved as Json[]).map(part => this.str(part)).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = arg;
          return (this.resolve(list, stackName) as Json[])[Number(this.resolve(index, stackName))];
        }
        case 'Fn::Split': {
          const [separator, source] = arg;
          return this.str(this.resolve(source, stackName)).split(separator);
        }
        case 'Fn::GetAZs':
          return [`${stack.region}a`, `${stack.region}b`];
        case 'Fn::Sub':
          return this.sub(arg, stack);
        case 'Fn::GetStackOutput': {
          const producer = this.resolve(arg.StackName, stackName);
          return this.output(producer, this.resolve(arg.OutputName, stackName));
        }
        case 'Fn::ImportValue':
          return this.importValue(this.resolve(arg, stackName));
        case 'Fn::FindInMap':
        case 'Fn::If':
        case 'Fn::Base64':
        case 'Fn::Cidr':
          throw new Error(`iam-eval: ${fn} is not supported (in ${stackName})`);
        default:
          break;
      }
    }
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, this.resolve(v, stackName)])
    );
  }

  private str(value: Json): string {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      return String(value);
    }
    throw new Error(`iam-eval: expected a string, got ${JSON.stringify(value)}`);
  }

  private stack(name: string): IStackTemplate {
    const stack = this.stacks.get(name);
    if (!stack) {
      throw new Error(`iam-eval: unknown stack ${name}`);
    }
    return stack;
  }

  private ref(name: string, stack: IStackTemplate): string {
    switch (name) {
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Partition':
        return PARTITION;
      case 'AWS::Region':
        return stack.region;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return stack.name;
      default:
        break;
    }
    const resource = stack.template.Resources?.[name];
    if (!resource) {
      const parameter = stack.template.Parameters?.[name];
      if (parameter) {
        return `${stack.name}.param.${name}`;
      }
      throw new Error(`iam-eval: Ref to unknown ${name} in ${stack.name}`);
    }
    const props = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return props.BucketName
          ? this.str(this.resolve(props.BucketName, stack.name))
          : `${stack.name}-${name}`.toLowerCase();
      case 'AWS::IAM::Role':
        return props.RoleName
          ? this.str(this.resolve(props.RoleName, stack.name))
          : `${stack.name}-${name}`;
      case 'AWS::ECS::Cluster':
        return props.ClusterName
          ? this.str(this.resolve(props.ClusterName, stack.name))
          : `${stack.name}-${name}`;
      case 'AWS::Events::EventBus':
        // an event bus's Ref is its name
        return this.str(this.resolve(props.Name, stack.name));
      case 'AWS::SNS::Topic': {
        // a topic's Ref is its ARN
        const topicName = props.TopicName
          ? this.str(this.resolve(props.TopicName, stack.name))
          : `${stack.name}-${name}`;
        return `arn:${PARTITION}:sns:${stack.region}:${ACCOUNT}:${topicName}`;
      }
      default:
        return `${stack.name}.${name}`;
    }
  }

  private getAtt(logicalId: string, attribute: string, stack: IStackTemplate): string {
    const resource = stack.template.Resources?.[logicalId];
    if (!resource) {
      throw new Error(`iam-eval: GetAtt of unknown ${logicalId} in ${stack.name}`);
    }
    const ref = this.ref(logicalId, stack);
    if (attribute === 'Arn') {
      switch (resource.Type) {
        case 'AWS::S3::Bucket':
          return `arn:${PARTITION}:s3:::${ref}`;
        case 'AWS::IAM::Role': {
          const path = resource.Properties?.Path
            ? this.str(this.resolve(resource.Properties.Path, stack.name))
            : '/';
          return `arn:${PARTITION}:iam::${ACCOUNT}:role${path}${ref}`;
        }
        case 'AWS::ECS::Cluster':
          return `arn:${PARTITION}:ecs:${stack.region}:${ACCOUNT}:cluster/${ref}`;
        case 'AWS::KMS::Key':
          return `arn:${PARTITION}:kms:${stack.region}:${ACCOUNT}:key/${stack.name}.${logicalId}`;
        case 'AWS::Cognito::UserPool':
          return `arn:${PARTITION}:cognito-idp:${stack.region}:${ACCOUNT}:userpool/${ref}`;
        case 'AWS::EFS::FileSystem':
          return `arn:${PARTITION}:elasticfilesystem:${stack.region}:${ACCOUNT}:file-system/${ref}`;
        case 'AWS::Events::EventBus':
          return `arn:${PARTITION}:events:${stack.region}:${ACCOUNT}:event-bus/${ref}`;
        default:
          break;
      }
    }
    return `${stack.name}.${logicalId}.${attribute}`;
  }

  private sub(arg: Json, stack: IStackTemplate): string {
    const [template, vars] = Array.isArray(arg) ? arg : [arg, {}];
    return String(template).replace(/\$\{([^}!]+)\}/g, (_match, name: string) => {
      if (vars && name in vars) {
        return this.str(this.resolve(vars[name], stack.name));
      }
      if (name.includes('.')) {
        const [logicalId, attribute] = name.split('.');
        return this.getAtt(logicalId, attribute, stack);
      }
      return this.ref(name, stack);
    });
  }

  private output(stackName: string, outputName: string): Json {
    const producer = this.stack(stackName);
    const output = producer.template.Outputs?.[outputName];
    if (!output) {
      throw new Error(`iam-eval: ${stackName} has no output ${outputName}`);
    }
    return this.resolve(output.Value, stackName);
  }

  private importValue(exportName: string): Json {
    for (const stack of this.stacks.values()) {
      for (const output of Object.values<Json>(stack.template.Outputs ?? {})) {
        if (output.Export && this.resolve(output.Export.Name, stack.name) === exportName) {
          return this.resolve(output.Value, stack.name);
        }
      }
    }
    throw new Error(`iam-eval: no export named ${exportName}`);
  }

  // --- collection ----------------------------------------------------------------------------

  private collectRoles(stack: IStackTemplate): void {
    for (const [logicalId, resource] of Object.entries<Json>(stack.template.Resources ?? {})) {
      if (resource.Type !== 'AWS::IAM::Role') {
        continue;
      }
      const props = this.resolve(resource.Properties ?? {}, stack.name);
      const role: IRoleModel = {
        id: `${stack.name}/${logicalId}`,
        stack: stack.name,
        logicalId,
        ref: this.ref(logicalId, stack),
        arn: this.getAtt(logicalId, 'Arn', stack),
        tags: Object.fromEntries((props.Tags ?? []).map((tag: Json) => [tag.Key, tag.Value])),
        managedPolicyArns: props.ManagedPolicyArns ?? [],
        statements: (props.Policies ?? []).flatMap((policy: Json) =>
          asList(policy.PolicyDocument.Statement)
        ),
        trust: asList(props.AssumeRolePolicyDocument?.Statement)
      };
      this.roles.set(role.ref, role);
    }
  }

  private collectPolicies(stack: IStackTemplate): void {
    for (const resource of Object.values<Json>(stack.template.Resources ?? {})) {
      if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') {
        const props = this.resolve(resource.Properties, stack.name);
        for (const roleRef of props.Roles ?? []) {
          const role = this.roles.get(roleRef);
          if (!role) {
            throw new Error(`iam-eval: policy attached to unknown role ${roleRef}`);
          }
          role.statements.push(...asList(props.PolicyDocument.Statement));
        }
      }
      if (resource.Type === 'AWS::S3::BucketPolicy') {
        const props = this.resolve(resource.Properties, stack.name);
        const existing = this.bucketPolicies.get(props.Bucket) ?? [];
        this.bucketPolicies.set(props.Bucket, [
          ...existing,
          ...asList(props.PolicyDocument.Statement)
        ]);
      }
    }
  }

  // --- queries -------------------------------------------------------------------------------

  /** The roles whose tags include all of `tags`. */
  rolesTagged(tags: Record<string, string>): IRoleModel[] {
    return [...this.roles.values()].filter(role =>
      Object.entries(tags).every(([key, value]) => role.tags[key] === value)
    );
  }

  /** The role defined in `stack` whose logical id starts with `prefix` (exactly one). */
  role(stack: string, prefix: string): IRoleModel {
    const found = [...this.roles.values()].filter(
      role => role.stack === stack && role.logicalId.startsWith(prefix)
    );
    if (found.length !== 1) {
      throw new Error(`iam-eval: ${found.length} roles ${prefix}* in ${stack}`);
    }
    return found[0];
  }

  /** Whether `role` may make `request`, by IAM's evaluation logic (same account). */
  decide(role: IRoleModel, request: IRequest, options: IDecideOptions = {}): boolean {
    if (role.managedPolicyArns.length) {
      throw new Error(
        `iam-eval: ${role.id} has managed policies, which this evaluator cannot read`
      );
    }
    const context: Record<string, string | string[]> = { ...request.context };
    for (const [key, value] of Object.entries(role.tags)) {
      context[`aws:PrincipalTag/${key}`] = value;
    }
    context['aws:PrincipalArn'] = role.arn;
    // A well-behaved client: TLS 1.3 unless the request says otherwise.
    context['aws:SecureTransport'] = context['aws:SecureTransport'] ?? 'true';
    if (request.resource.startsWith(`arn:${PARTITION}:s3:::`)) {
      context['s3:TlsVersion'] = context['s3:TlsVersion'] ?? '1.3';
    }

    const identity = [
      ...(options.identityPolicies === false ? [] : role.statements),
      ...(options.extraIdentityStatements ?? [])
    ];
    const resource =
      options.resourcePolicies === false ? [] : this.resourcePolicyFor(request.resource);
    const applicable = [
      ...identity.map(statement => ({ statement, grants: true })),
      ...resource
        .filter(statement => this.principalMatches(statement, role))
        .map(statement => ({ statement, grants: this.principalNamesRole(statement, role) }))
    ].filter(({ statement }) => statementMatches(statement, request, context));

    if (applicable.some(({ statement }) => statement.Effect === 'Deny')) {
      return false;
    }
    return applicable.some(({ statement, grants }) => statement.Effect === 'Allow' && grants);
  }

  private resourcePolicyFor(resource: string): IStatement[] {
    const match = /^arn:[^:]+:s3:::([^/]+)/.exec(resource);
    return match ? (this.bucketPolicies.get(match[1]) ?? []) : [];
  }

  private principalMatches(statement: IStatement, role: IRoleModel): boolean {
    const principal = statement.Principal;
    if (principal === '*') {
      return true;
    }
    const aws = asList(principal?.AWS);
    return aws.some(
      entry =>
        entry === '*' ||
        entry === role.arn ||
        entry === `arn:${PARTITION}:iam::${ACCOUNT}:root` ||
        entry === ACCOUNT
    );
  }

  /** Same-account rule: a resource policy grants by itself only when it names the role (or everyone). */
  private principalNamesRole(statement: IStatement, role: IRoleModel): boolean {
    const principal = statement.Principal;
    return (
      principal === '*' || asList(principal?.AWS).some(entry => entry === '*' || entry === role.arn)
    );
  }
}

function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

/** IAM string matching with `*` and `?` wildcards. */
export function globMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'is' : 's').test(value);
}

/** Replace `${aws:PrincipalTag/x}`-style policy variables with context values. */
function substitute(
  pattern: string,
  context: Record<string, string | string[]>
): string | undefined {
  let unresolved = false;
  const result = pattern.replace(/\$\{([^}]+)\}/g, (_match, key: string) => {
    if (key === '*' || key === '?' || key === '$') {
      return key;
    }
    const value = context[key];
    if (typeof value !== 'string') {
      unresolved = true;
      return '';
    }
    return value;
  });
  return unresolved ? undefined : result;
}

function matchesAny(
  patterns: string[],
  value: string,
  context: Record<string, string | string[]>,
  ignoreCase = false
): boolean {
  return patterns.some(pattern => {
    const resolved = substitute(pattern, context);
    return resolved !== undefined && globMatch(resolved, value, ignoreCase);
  });
}

/** Whether a statement applies to a request (action, resource and conditions). */
export function statementMatches(
  statement: IStatement,
  request: IRequest,
  context: Record<string, string | string[]>
): boolean {
  if (
    statement.Action !== undefined &&
    !matchesAny(asList(statement.Action), request.action, context, true)
  ) {
    return false;
  }
  if (
    statement.NotAction !== undefined &&
    matchesAny(asList(statement.NotAction), request.action, context, true)
  ) {
    return false;
  }
  if (
    statement.Resource !== undefined &&
    !matchesAny(asList(statement.Resource), request.resource, context)
  ) {
    return false;
  }
  if (
    statement.NotResource !== undefined &&
    matchesAny(asList(statement.NotResource), request.resource, context)
  ) {
    return false;
  }
  return conditionsHold(statement.Condition ?? {}, context);
}

const OPERATORS: Record<
  string,
  { compare: (pattern: string, value: string) => boolean; negated: boolean }
> = {
  StringEquals: { compare: (p, v) => p === v, negated: false },
  StringNotEquals: { compare: (p, v) => p === v, negated: true },
  StringEqualsIgnoreCase: {
    compare: (p, v) => p.toLowerCase() === v.toLowerCase(),
    negated: false
  },
  StringLike: { compare: (p, v) => globMatch(p, v), negated: false },
  StringNotLike: { compare: (p, v) => globMatch(p, v), negated: true },
  ArnEquals: { compare: (p, v) => p === v, negated: false },
  ArnNotEquals: { compare: (p, v) => p === v, negated: true },
  ArnLike: { compare: (p, v) => globMatch(p, v), negated: false },
  ArnNotLike: { compare: (p, v) => globMatch(p, v), negated: true },
  Bool: { compare: (p, v) => p.toLowerCase() === v.toLowerCase(), negated: false },
  NumericEquals: { compare: (p, v) => Number(v) === Number(p), negated: false },
  NumericNotEquals: { compare: (p, v) => Number(v) === Number(p), negated: true },
  NumericLessThan: { compare: (p, v) => Number(v) < Number(p), negated: false },
  NumericLessThanEquals: { compare: (p, v) => Number(v) <= Number(p), negated: false },
  NumericGreaterThan: { compare: (p, v) => Number(v) > Number(p), negated: false },
  NumericGreaterThanEquals: { compare: (p, v) => Number(v) >= Number(p), negated: false }
};

function conditionsHold(
  conditions: Record<string, Record<string, string | string[] | boolean>>,
  context: Record<string, string | string[]>
): boolean {
  return Object.entries(conditions).every(([rawOperator, entries]) =>
    Object.entries(entries).every(([key, expected]) => {
      const patterns = asList(expected as string | string[]).map(String);
      const present = context[key];
      if (rawOperator === 'Null') {
        const wantsAbsent = patterns[0] === 'true';
        return wantsAbsent === (present === undefined);
      }
      let operator = rawOperator;
      let qualifier: 'ForAnyValue' | 'ForAllValues' | undefined;
      if (operator.startsWith('ForAnyValue:') || operator.startsWith('ForAllValues:')) {
        qualifier = operator.startsWith('ForAnyValue:') ? 'ForAnyValue' : 'ForAllValues';
        operator = operator.slice(operator.indexOf(':') + 1);
      }
      const ifExists = operator.endsWith('IfExists');
      if (ifExists) {
        operator = operator.slice(0, -'IfExists'.length);
      }
      const spec = OPERATORS[operator];
      if (!spec) {
        throw new Error(`iam-eval: condition operator ${rawOperator} is not supported`);
      }
      if (present === undefined) {
        if (ifExists) {
          return true;
        }
        // A missing key fails a positive test and passes a negated one (ForAllValues: vacuous).
        return qualifier === 'ForAllValues' ? true : spec.negated;
      }
      const values = asList(present);
      const resolvedPatterns = patterns.map(pattern => substitute(pattern, context));
      const hit = (value: string) =>
        resolvedPatterns.some(pattern => pattern !== undefined && spec.compare(pattern, value));
      if (qualifier === 'ForAllValues') {
        return values.every(value => (spec.negated ? !hit(value) : hit(value)));
      }
      const anyHit = values.some(hit);
      return spec.negated ? !anyHit : anyHit;
    })
  );
}
