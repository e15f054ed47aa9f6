/**
 * The wire protocol of `{base_url}westtek/api/`, mirroring the pydantic models
 * of `westtek_server_ext/models.py` field for field.
 */

/**
 * How much a change matters to the notebooks that use the environment.
 */
export type Severity = 'info' | 'minor' | 'critical';

/**
 * The live environment graded against its baseline snapshot.
 */
export type DriftStatus =
  'STABLE' | 'MINOR_DRIFT' | 'CRITICAL_DRIFT' | 'NO_BASELINE';

/**
 * What a background job does.
 */
export type JobKind =
  'snapshot' | 'verify' | 'restore' | 'rollback' | 'take-over';

/**
 * Where a background job stands.
 */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed';

/**
 * Formats of `GET snapshots/{id}/export?format=`.
 */
export type ExportFormat = 'requirements' | 'pylock' | 'conda';

/**
 * The body of every error answer (4xx, 5xx).
 */
export interface IErrorBody {
  /**
   * What happened and what to do about it, meant for the researcher.
   */
  message: string;

  /**
   * A short machine-readable cause, e.g. `"not-found"`.
   */
  reason?: string | null;

  /**
   * Always empty (the field Jupyter's error pages keep).
   */
  traceback?: string | null;
}

/**
 * The body of `GET {base_url}westtek/api/status`, as served by the
 * `westtek_server_ext` Jupyter server extension (`StatusReport.to_json`).
 */
export interface IStatusReport {
  /**
   * Version of the installed `westtek` distribution, e.g. `"0.1.0"`.
   */
  version: string;

  /**
   * Which West Tek component answered, e.g. `"server-extension"`.
   */
  component: string;

  /**
   * Wire names of the capabilities present on that server, sorted,
   * e.g. `["hub-service", "server-extension", "status"]`.
   */
  capabilities: string[];

  /**
   * Python version of the server's environment, e.g. `"3.11.7"`.
   */
  python: string;
}

/**
 * One graded difference between a baseline and the live environment (or
 * between two snapshots).
 */
export interface IChange {
  /**
   * What part of the environment changed.
   */
  kind:
    | 'interpreter'
    | 'package'
    | 'kernel'
    | 'config'
    | 'extension'
    | 'notebook'
    | 'data'
    | 'stale_kernel';

  /**
   * Name of the thing that changed, e.g. a package name or a file path
   * (of a stale kernel: `<distribution> in <notebook or kernel id>`).
   */
  name: string;

  /**
   * How it changed.
   */
  change: 'added' | 'removed' | 'upgraded' | 'downgraded' | 'modified';

  /**
   * The value before (a version, a hash…), if it existed.
   */
  before?: string | null;

  /**
   * The value after, if it still exists.
   */
  after?: string | null;

  /**
   * How much the change matters.
   */
  severity: Severity;

  /**
   * Notebooks (paths relative to the server root) the change affects.
   */
  affected_notebooks: string[];

  /**
   * Why the change got its severity, in a sentence.
   */
  reason: string;
}

/**
 * A drift report: `GET snapshots/{a}/diff/{b}` (what changed from `a` to `b`).
 */
export interface IDriftReport {
  /**
   * The overall grade.
   */
  status: Exclude<DriftStatus, 'NO_BASELINE'>;

  /**
   * Id of the snapshot compared against (`a`).
   */
  baseline: string;

  /**
   * Every graded difference.
   */
  changes: IChange[];
}

/**
 * `GET drift`: the live environment graded against its baseline.
 */
export interface IDriftState {
  /**
   * The overall grade.
   */
  status: DriftStatus;

  /**
   * Id of the baseline snapshot, if there is one.
   */
  baseline?: string | null;

  /**
   * Every graded difference from the baseline.
   */
  changes: IChange[];

  /**
   * Identity of the environment being watched.
   */
  environment_id: string;

  /**
   * Whether the server watches the environment in real time.
   */
  watching: boolean;

  /**
   * When the live environment was last graded (epoch seconds).
   */
  checked_at: number;

  /**
   * Why there is no baseline, if there is none.
   */
  message?: string | null;

  /**
   * Running kernels that run a distribution at a version no longer installed
   * (each also a change of kind `stale_kernel`): restart them.
   */
  stale_kernels?: IStaleKernel[];
}

/**
 * A running kernel that still runs a distribution at a version no longer
 * installed (`StaleModuleReport` in `westtek_core.wire`).
 */
export interface IStaleKernel {
  /**
   * The kernel's id (`POST api/kernels/{id}/restart` restarts it).
   */
  kernel_id: string;

  /**
   * The kernel's notebook, if it has one.
   */
  notebook?: string | null;

  /**
   * The distribution, e.g. `numpy`.
   */
  distribution: string;

  /**
   * The version the kernel imported and still runs.
   */
  loaded: string;

  /**
   * The version installed now (null: uninstalled).
   */
  installed?: string | null;

  /**
   * The warning, also the reason of its `stale_kernel` change.
   */
  message: string;
}

/**
 * A distribution installed in an interpreter's environment.
 */
export interface IPackage {
  /**
   * Distribution name.
   */
  name: string;

  /**
   * Installed version.
   */
  version: string;

  /**
   * Who installed it (`pip`, `conda`…), when known.
   */
  installer?: string | null;

  /**
   * Notebooks importing it.
   */
  imported_by: string[];
}

/**
 * A captured interpreter and its packages.
 */
export interface IInterpreter {
  /**
   * Short name of the interpreter, e.g. `"0"` or `"python3"`.
   */
  label: string;

  /**
   * Path of the interpreter's executable.
   */
  path: string;

  /**
   * `sys.prefix` of its environment.
   */
  prefix?: string | null;

  /**
   * Python version.
   */
  version?: string | null;

  /**
   * Installed distributions.
   */
  packages: IPackage[];
}

/**
 * An installed kernelspec.
 */
export interface IKernel {
  /**
   * Kernelspec name.
   */
  name: string;

  /**
   * Name shown in the launcher.
   */
  display_name: string;

  /**
   * Language of the kernel.
   */
  language?: string | null;

  /**
   * Command line that starts the kernel.
   */
  argv: string[];

  /**
   * Label of the interpreter it runs.
   */
  interpreter?: string | null;
}

/**
 * A Jupyter configuration file.
 */
export interface IConfigFile {
  /**
   * The configuration directory holding it.
   */
  dir: string;

  /**
   * Path of the file.
   */
  path: string;

  /**
   * Size in bytes.
   */
  size: number;
}

/**
 * `GET environment`: what the researcher's environment is made of right now.
 */
export interface IEnvironmentView {
  /**
   * Identity of the environment.
   */
  environment_id: string;

  /**
   * The workspace root captured with it.
   */
  root: string;

  /**
   * Captured interpreters with their packages.
   */
  interpreters: IInterpreter[];

  /**
   * Installed kernelspecs.
   */
  kernels: IKernel[];

  /**
   * Jupyter configuration files.
   */
  config_files: IConfigFile[];

  /**
   * JupyterLab extensions, as captured (name, version, … whatever is known).
   */
  labextensions: { [key: string]: any }[];

  /**
   * Drift grade of the live environment.
   */
  drift: DriftStatus;
}

/**
 * One row of `GET snapshots`.
 */
export interface ISnapshotSummary {
  /**
   * Snapshot id (a content hash).
   */
  id: string;

  /**
   * When it was taken (ISO 8601).
   */
  timestamp?: string | null;

  /**
   * Identity of the environment captured.
   */
  environment_id?: string | null;

  /**
   * Who took it.
   */
  created_by?: string | null;

  /**
   * Who holds its environment now, per the hub service (after a hand-over, the
   * successor); absent outside JupyterHub.
   */
  holder?: string | null;

  /**
   * Bytes of everything the snapshot describes.
   */
  size_bytes: number;

  /**
   * Bytes this snapshot added to the store (new, compressed).
   */
  stored_bytes?: number | null;

  /**
   * Notebooks in the captured workspace.
   */
  notebook_count: number;

  /**
   * Packages over all captured interpreters.
   */
  packages: number;

  /**
   * The researcher's note.
   */
  notes: string;

  /**
   * Free key/value labels.
   */
  labels: { [key: string]: string };

  /**
   * Whether drift is measured against it.
   */
  baseline: boolean;
}

/**
 * `GET snapshots`.
 */
export interface ISnapshotList {
  /**
   * The store's snapshots.
   */
  snapshots: ISnapshotSummary[];

  /**
   * Bytes the store holds on disk.
   */
  store_bytes?: number | null;
}

/**
 * `POST snapshots`.
 */
export interface ISnapshotCreate {
  /**
   * The researcher's note.
   */
  note: string;

  /**
   * Free key/value labels.
   */
  labels: { [key: string]: string };

  /**
   * Make the new snapshot the baseline.
   */
  baseline?: boolean;
}

/**
 * How `POST snapshots/{id}/restore` lays a snapshot out.
 */
export type RestoreMode = 'files' | 'lock';

/**
 * `POST snapshots/{id}/restore`: into a new directory under the server root.
 */
export interface IRestoreRequest {
  /**
   * Directory relative to the server root; new or empty.
   */
  target: string;

  /**
   * `files` restores byte-exact from the store; `lock` rebuilds from a lock.
   */
  mode: RestoreMode;
}

/**
 * `PUT baseline`.
 */
export interface IBaselineRequest {
  /**
   * Snapshot id or unique prefix.
   */
  id: string;
}

/**
 * `POST rollback`: put the live environment back to a snapshot, in place.
 */
export interface IRollbackRequest {
  /**
   * Snapshot id; the baseline when omitted.
   */
  to?: string;

  /**
   * Roll back only this part.
   */
  only?: 'packages' | 'kernels' | 'config';

  /**
   * The fingerprint of the preview the researcher confirmed: the rollback
   * fails, changing nothing, if it would now do anything else.
   */
  plan?: string;
}

/**
 * One step of a rollback: a distribution, a kernelspec or a config file.
 */
export interface IRollbackStep {
  /**
   * What the step changes.
   */
  area: 'packages' | 'kernels' | 'config';

  /**
   * `remove` (live only), `install` (snapshot only), `replace` (both,
   * different) or `restore-prefix` (the interpreter's whole prefix is gone).
   */
  action: 'remove' | 'install' | 'replace' | 'restore-prefix';

  /**
   * The distribution, kernelspec or config file.
   */
  name: string;

  /**
   * The interpreter, kernelspec directory or config directory.
   */
  where: string;

  /**
   * The live version (packages).
   */
  before?: string | null;

  /**
   * The version put back (packages).
   */
  after?: string | null;

  /**
   * The step in one line.
   */
  description: string;
}

/**
 * `GET rollback/preview`: everything a rollback would change now, in order.
 */
export interface IRollbackPreview {
  /**
   * The snapshot rolled back to.
   */
  target: string;

  /**
   * The steps, in the order they run.
   */
  steps: IRollbackStep[];

  /**
   * Per area, how many items already match.
   */
  unchanged: { [area: string]: number };

  /**
   * What the rollback cannot do safely and leaves as it is.
   */
  notes: string[];

  /**
   * Pass as `plan` to `POST rollback` to apply exactly this.
   */
  fingerprint: string;
}

/**
 * How far a job has got.
 */
export interface IJobProgress {
  /**
   * 0–100.
   */
  percent: number;

  /**
   * Files handled so far.
   */
  files_done: number;

  /**
   * Files to handle in all.
   */
  files_total: number;

  /**
   * Bytes handled so far.
   */
  bytes_done: number;

  /**
   * Bytes to handle in all.
   */
  bytes_total: number;

  /**
   * What the job is doing when counts say nothing, e.g. waiting for packs to come back
   * from archive storage ("waiting for archive, ready in about 12 hours: …").
   */
  message?: string | null;
}

/**
 * A long operation running in the background; poll `GET jobs/{id}`.
 */
export interface IJob {
  /**
   * Job id.
   */
  id: string;

  /**
   * What the job does.
   */
  kind: JobKind;

  /**
   * Where it stands.
   */
  state: JobState;

  /**
   * What it does, in words.
   */
  description: string;

  /**
   * How far it has got.
   */
  progress: IJobProgress;

  /**
   * When it was created (epoch seconds).
   */
  created: number;

  /**
   * When it finished (epoch seconds), if it has.
   */
  finished?: number | null;

  /**
   * What it produced (per kind, e.g. `{id}` of a new snapshot).
   */
  result?: { [key: string]: any } | null;

  /**
   * Why it failed, if it did.
   */
  error?: string | null;
}

/**
 * `GET jobs`: this server's jobs, newest first.
 */
export interface IJobList {
  /**
   * The jobs.
   */
  jobs: IJob[];
}

/**
 * The result of a `verify` job.
 */
export interface IVerifyResult {
  /**
   * Whether every checked snapshot is intact.
   */
  ok: boolean;

  /**
   * The snapshots checked.
   */
  snapshots: string[];

  /**
   * What is wrong, in words.
   */
  problems: string[];

  /**
   * Files whose stored content is damaged.
   */
  damaged: { snapshot: string; file: string }[];
}

/**
 * A change in drift: the changes that appeared and those that went away.
 */
export interface IDriftEvent {
  /**
   * Event id, increasing.
   */
  id: number;

  /**
   * When it happened (epoch seconds).
   */
  time: number;

  /**
   * Identity of the environment.
   */
  environment_id: string;

  /**
   * Baseline snapshot id graded against.
   */
  baseline: string;

  /**
   * The overall grade after the event.
   */
  status: DriftStatus;

  /**
   * Changes that appeared.
   */
  changes: IChange[];

  /**
   * Changes that went away.
   */
  resolved: IChange[];

  /**
   * The Drift Analyzer's risk assessment (critical events).
   */
  assessment?: IRiskAssessment | null;
}

/**
 * The Drift Analyzer's assessment of a critical drift event
 * (`models.RiskAssessment`).
 */
export interface IRiskAssessment {
  /**
   * The agent that made it.
   */
  agent: 'drift';

  /**
   * The risk to the notebooks.
   */
  risk: 'HIGH' | 'MEDIUM' | 'LOW' | 'UNKNOWN';

  /**
   * When it was made (epoch seconds).
   */
  time: number;

  /**
   * The assessment, with numbered citations.
   */
  answer: string;

  /**
   * What supports it.
   */
  citations: { source: string; locator: string }[];

  /**
   * The tools the agent ran.
   */
  tools_called: string[];

  /**
   * Tool calls refused.
   */
  refused?: string[];

  /**
   * `timeout` or `provider` when the model failed.
   */
  error?: string | null;
}

/**
 * `GET drift/events`, oldest first.
 */
export interface IEventList {
  /**
   * The events.
   */
  events: IDriftEvent[];
}

/**
 * A message on `WS drift/stream`: the state on connect, then each event.
 */
export interface IStreamMessage {
  /**
   * Which of `drift`, `event` or `snapshot_id` is set.
   */
  type: 'state' | 'event' | 'snapshot';

  /**
   * The drift state, for `type: "state"`.
   */
  drift?: IDriftState | null;

  /**
   * A drift event, for `type: "event"`.
   */
  event?: IDriftEvent | null;

  /**
   * A snapshot just taken (by any client), for `type: "snapshot"`.
   */
  snapshot_id?: string | null;
}

/**
 * Which drift raises a JupyterLab notification.
 */
export type NotificationLevel = 'critical' | 'minor' | 'none';

/**
 * The user settings of `westtek-labextension:plugin` (see schema/plugin.json).
 */
export interface IWestTekSettings {
  /**
   * Seconds between `GET drift` polls while the WebSocket is down.
   */
  pollInterval: number;

  /**
   * The least drift that raises a notification.
   */
  notificationLevel: NotificationLevel;
}

/**
 * `GET kb/cell` (`models.PreservedCell`): a cell the lab's memory cited, as
 * its snapshot holds it.
 */
export interface IPreservedCell {
  environment_id: string;
  lab_id: string;
  snapshot_id: string;
  path: string;
  cell: number;
  cells: number;
  cell_type: string;
  source: string;
  outputs: string[];
}
