/**
 * Names shared with the rest of West Tek: the ECS spawner (westtek_spawner's `ecs` backend),
 * the hub configuration (hub_config/aws.py) and the snapshot store all rely on them, so they
 * are defined once here and exported as stack outputs.
 */

import images from '../../images/images.json';

/**
 * The images `make images` builds (images/images.json, read by images/build.py too): each is
 * pushed to the ECR repository `westtek-<stage>/<name>` under the same tag, e.g.
 * `westtek/notebook:latest` to `westtek-prod/notebook:latest` (infra/README.md).
 */
export type ImageName = keyof typeof images.images;
/** The tag `make images` gives both images, and the stacks' default `imageTag`. */
export const IMAGE_TAG: string = images.tag;
/** The ECR repository of an image on a stage. */
export function imageRepositoryName(stage: string, image: ImageName): string {
  const local = images.images[image]; // e.g. westtek/notebook
  return `westtek-${stage}/${local.slice(local.lastIndexOf('/') + 1)}`;
}

/** Tag keys put on every notebook task, access point and snapshot object. */
export const TAG_KEYS = {
  /** The lab (a JupyterHub group, an AD group) a resource belongs to. */
  labId: 'lab_id',
  /** The researcher (JupyterHub user name) a resource belongs to. */
  researcherId: 'researcher_id',
  /** The West Tek environment (one per researcher and named server). */
  environmentId: 'environment_id',
  /** What a role is for: `notebook`, `hub`. Used by the snapshot bucket's policy. */
  role: 'westtek_role',
  /** The deployment stage: `dev` or `prod`. */
  stage: 'westtek_stage'
} as const;

/** The `westtek_role` tag value on every per-lab notebook task role. */
export const NOTEBOOK_ROLE_TAG = 'notebook';

/** Port the single-user JupyterLab server listens on inside a notebook task. */
export const NOTEBOOK_PORT = 8888;
/** Public port of configurable-http-proxy in the hub task (the ALB's target). */
export const PROXY_PORT = 8000;
/** Port of the JupyterHub API, which notebook servers call back to. */
export const HUB_API_PORT = 8081;
/** Port of the PostgreSQL database. */
export const DATABASE_PORT = 5432;

/** Name of the notebook container in the task definition (the spawner overrides its command). */
export const NOTEBOOK_CONTAINER = 'notebook';

/**
 * The key segment of each lab's memory in the lab's knowledge-base prefix: the hub
 * service's `LAB_MEMORY_SCOPE` ("lab memory", westtek_hub/knowledge.py), percent-encoded.
 */
export const LAB_MEMORY_SCOPE = 'lab%20memory';

/** The S3 key prefix under which a lab's snapshots live: `labs/{labId}/`. */
export function labPrefix(labId: string): string {
  return `labs/${labId}/`;
}

/** The EFS access point root directory of a researcher: `/home/{researcher}`. */
export function researcherHome(researcher: string): string {
  return `/home/${researcher}`;
}

/** Lab ids become S3 prefixes, IAM tag values and Cognito group names: keep them plain. */
export const LAB_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

/**
 * The name of a stage's snapshot bucket. Deterministic (account and region make it unique),
 * so other stacks name it without a cross-stack reference and IAM policies read plainly.
 */
export function snapshotBucketName(stage: string, account: string, region: string): string {
  return `westtek-${stage}-snapshots-${account}-${region}`;
}

/** The name of a stage's audit anchor bucket (S3 Object Lock; known to the storage and compute stacks). */
export function auditBucketName(stage: string, account: string, region: string): string {
  return `westtek-${stage}-audit-${account}-${region}`;
}

/** The name of the snapshot replica bucket in `replicaRegion` (known to both stacks). */
export function replicaBucketName(stage: string, account: string): string {
  return `westtek-${stage}-snapshot-replica-${account}`;
}

/** The alias of the replica bucket's KMS key in `replicaRegion`. */
export function replicaKeyAlias(stage: string): string {
  return `alias/westtek-${stage}-snapshot-replica`;
}

/** A lab's alert topic (alerts stack): critical drift of the lab, to its subscribers. */
export function alertTopicName(stage: string, labId: string): string {
  return `westtek-${stage}-alerts-${labId}`;
}

/**
 * The labs as the hub reads them (`WESTTEK_LABS`): id, the AD group of its members and the
 * AD group of its admins (null when absent).
 */
export function labsSetting(
  labs: readonly { id: string; adGroup?: string; adminAdGroup?: string }[]
): { id: string; adGroup: string | null; adminAdGroup: string | null }[] {
  return labs.map(lab => ({
    id: lab.id,
    adGroup: lab.adGroup ?? null,
    adminAdGroup: lab.adminAdGroup ?? null
  }));
}
