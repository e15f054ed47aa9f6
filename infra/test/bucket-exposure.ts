/**
 * Finds every way a synthesized S3 bucket could be, or become, public: a public-access block
 * that is missing or partial (which would let a later ACL or policy open it), ACLs left
 * enabled or set public, website hosting, or a bucket policy that allows anyone (or another
 * account) in. Returns one line per problem; an empty list means private.
 */

/** Conditions that confine a statement to our own account, organisation, VPC endpoint or source. */
const CONFINING_KEYS = [
  'aws:SourceAccount',
  'aws:SourceArn',
  'aws:PrincipalAccount',
  'aws:PrincipalOrgID',
  'aws:SourceVpce',
  'aws:SourceVpc',
  'aws:ResourceAccount'
];

/** Accounts that are not ours but may write logs into a logs bucket: ELB's log delivery. */
const LOG_DELIVERY_ACTIONS = ['s3:PutObject'];

const FLAGS = ['BlockPublicAcls', 'BlockPublicPolicy', 'IgnorePublicAcls', 'RestrictPublicBuckets'];

/** Problems of every bucket in a set of templates (by stack part). */
export function bucketExposures(
  templates: Record<string, any>,
  ourAccount: unknown = { Ref: 'AWS::AccountId' }
): string[] {
  const problems: string[] = [];
  for (const [part, template] of Object.entries(templates)) {
    const resources: Record<string, any> = template.Resources ?? {};
    for (const [id, resource] of Object.entries(resources)) {
      if (resource.Type === 'AWS::S3::Bucket') {
        problems.push(...bucketProblems(`${part}/${id}`, resource.Properties ?? {}));
      }
      if (resource.Type === 'AWS::S3::BucketPolicy') {
        for (const statement of [resource.Properties.PolicyDocument.Statement].flat()) {
          const problem = statementProblem(statement, ourAccount);
          if (problem) {
            problems.push(`${part}/${id}: ${problem}`);
          }
        }
      }
    }
  }
  return problems;
}

function bucketProblems(where: string, props: any): string[] {
  const problems: string[] = [];
  const block = props.PublicAccessBlockConfiguration ?? {};
  for (const flag of FLAGS) {
    if (block[flag] !== true) {
      problems.push(`${where}: public access block ${flag} is not on`);
    }
  }
  if (
    props.AccessControl &&
    !['Private', 'LogDeliveryWrite', 'BucketOwnerFullControl'].includes(props.AccessControl)
  ) {
    problems.push(`${where}: canned ACL ${props.AccessControl}`);
  }
  const ownership = props.OwnershipControls?.Rules?.[0]?.ObjectOwnership;
  if (ownership !== 'BucketOwnerEnforced') {
    problems.push(`${where}: ACLs are enabled (object ownership ${ownership ?? 'unset'})`);
  }
  if (props.WebsiteConfiguration) {
    problems.push(`${where}: website hosting is on`);
  }
  return problems;
}

function statementProblem(statement: any, ourAccount: unknown): string | undefined {
  if (statement.Effect !== 'Allow') {
    return undefined;
  }
  if (statement.NotPrincipal) {
    return `${statement.Sid ?? 'a statement'} allows through NotPrincipal`;
  }
  const principal = statement.Principal;
  const confined = Object.values<any>(statement.Condition ?? {}).some(entries =>
    Object.keys(entries).some(key => CONFINING_KEYS.includes(key))
  );
  if (principal === '*' || [principal?.AWS].flat().includes('*')) {
    return confined ? undefined : `${statement.Sid ?? 'a statement'} allows anyone`;
  }
  const awsPrincipals = [principal?.AWS ?? []].flat();
  const foreign = awsPrincipals.filter(entry => !isOurAccount(entry, ourAccount));
  if (foreign.length) {
    const actions = [statement.Action].flat();
    const writeOnlyLogs = actions.every(action => LOG_DELIVERY_ACTIONS.includes(action));
    if (!writeOnlyLogs) {
      return `${statement.Sid ?? 'a statement'} allows another account (${JSON.stringify(foreign)}) ${actions.join(', ')}`;
    }
  }
  return undefined;
}

/** A principal of our account: a role of these templates, or an ARN built on our account id. */
function isOurAccount(entry: unknown, ourAccount: unknown): boolean {
  if (entry && typeof entry === 'object' && 'Fn::GetAtt' in entry) {
    return true;
  }
  return JSON.stringify(entry).includes(JSON.stringify(ourAccount));
}
