"""The wire protocol of ``westtek/api/``: request and response bodies as pydantic models.

Handlers validate request bodies with these models (a bad body is a 400 naming the field)
and the OpenAPI document takes its schemas from them; labextension/src/tokens.ts mirrors them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from westtek_core.areas import RestoreArea
from westtek_core.wire import StaleModuleReport

Severity = Literal["info", "minor", "critical"]
DriftStatus = Literal["STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT", "NO_BASELINE"]
JobKind = Literal["snapshot", "verify", "restore", "rollback", "take-over"]
JobState = Literal["queued", "running", "succeeded", "failed"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Wire):
    """Every error: ``message`` says what to do about it."""

    message: str
    reason: str | None = None
    traceback: str | None = Field(default=None, description="Always empty; kept by Jupyter")


class StatusReport(_Wire):
    """``GET status``."""

    version: str
    component: str
    capabilities: list[str]
    python: str


class Change(_Wire):
    """One graded difference between the baseline and the live environment."""

    kind: Literal[
        "interpreter",
        "package",
        "kernel",
        "config",
        "extension",
        "notebook",
        "data",
        "stale_kernel",  # westtek_core.drift.stale_kernels.STALE_KERNEL
    ]
    name: str
    change: Literal["added", "removed", "upgraded", "downgraded", "modified"]
    before: str | None = None
    after: str | None = None
    severity: Severity
    affected_notebooks: list[str] = Field(default_factory=list)
    reason: str


class DriftState(_Wire):
    """``GET drift``: the live environment graded against its baseline."""

    status: DriftStatus
    baseline: str | None = None
    environment_id: str
    changes: list[Change] = Field(default_factory=list)
    stale_kernels: list[StaleModuleReport] = Field(
        default_factory=list,
        description="Running kernels that run a distribution at a version no longer installed "
        "(each also a change of kind stale_kernel): restart them",
    )
    watching: bool = False
    checked_at: float = Field(description="When the live environment was last graded (epoch s)")
    message: str | None = Field(default=None, description="Why there is no baseline, if none")


class DriftReport(_Wire):
    """``GET snapshots/{a}/diff/{b}``: two snapshots compared, graded like drift."""

    status: Literal["STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT"]
    baseline: str
    changes: list[Change]


class Package(_Wire):
    """A distribution installed in an interpreter's environment."""

    name: str
    version: str
    installer: str | None = None
    imported_by: list[str] = Field(default_factory=list, description="Notebooks importing it")


class Interpreter(_Wire):
    """A captured interpreter and its packages."""

    label: str
    path: str
    prefix: str | None = None
    version: str | None = None
    packages: list[Package]


class Kernel(_Wire):
    """An installed kernelspec."""

    name: str
    display_name: str
    language: str | None = None
    argv: list[str]
    interpreter: str | None = Field(default=None, description="Label of the interpreter it runs")


class ConfigFile(_Wire):
    """A Jupyter configuration file."""

    dir: str
    path: str
    size: int


class EnvironmentView(_Wire):
    """``GET environment``: what the researcher's environment is made of right now."""

    environment_id: str
    root: str
    interpreters: list[Interpreter]
    kernels: list[Kernel]
    config_files: list[ConfigFile]
    labextensions: list[dict[str, Any]]
    drift: DriftStatus


class SnapshotSummary(_Wire):
    """One row of ``GET snapshots``."""

    id: str
    timestamp: str | None = None
    environment_id: str | None = None
    created_by: str | None = None
    size_bytes: int
    stored_bytes: int | None = Field(
        default=None, description="Bytes this snapshot added to the store (new, compressed)"
    )
    notebook_count: int
    packages: int
    notes: str
    labels: dict[str, str]
    baseline: bool = Field(default=False, description="Whether drift is measured against it")
    holder: str | None = Field(
        default=None,
        description="Who holds the snapshot's environment now, per the hub service (after a "
        "hand-over, the successor); absent outside JupyterHub",
    )


class SnapshotList(_Wire):
    """``GET snapshots``."""

    snapshots: list[SnapshotSummary]
    store_bytes: int | None = Field(default=None, description="Bytes the store holds on disk")


class SnapshotCreate(_Wire):
    """``POST snapshots``."""

    note: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    baseline: bool = Field(default=False, description="Make the new snapshot the baseline")


class RestoreRequest(_Wire):
    """``POST snapshots/{id}/restore``: into a new directory under the server's root."""

    target: str = Field(description="Directory relative to the server root; new or empty")
    mode: Literal["files", "lock"] = "files"


class TakeOverRequest(_Wire):
    """``POST take-over``: bring a predecessor's environment into this workspace."""

    environment_id: str = Field(min_length=1, max_length=200, description="The environment")
    predecessor: str = Field(min_length=1, max_length=200, description="Whose it was")
    snapshot_id: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{4,64}$",
        description="The snapshot to take over (default: the environment's latest)",
    )


class TakeOver(_Wire):
    """A take-over done in this workspace (``GET take-over``)."""

    environment_id: str
    predecessor: str
    snapshot: str
    folder: str = Field(description="Where their work is, relative to the server root")
    start_page: str = Field(description="Its start page, relative to the server root")
    kernels: list[dict[str, str]] = Field(description="Kernels installed: name, display_name")
    left_out: list[dict[str, str]] = Field(description="Their private files: path, why")
    files: int
    bytes: int


class TakeOvers(_Wire):
    """``GET take-over``: every take-over done in this workspace, oldest first."""

    take_overs: list[TakeOver]


class BaselineRequest(_Wire):
    """``PUT baseline``."""

    id: str = Field(description="Snapshot id or unique prefix")


class RollbackRequest(_Wire):
    """``POST rollback``: put the live environment back to a snapshot, in place."""

    to: str | None = Field(default=None, description="Snapshot id; the baseline when omitted")
    only: RestoreArea | None = None
    plan: str | None = Field(
        default=None,
        description="The fingerprint of the preview the researcher confirmed: the rollback "
        "fails, changing nothing, if it would now do anything else",
    )


class RollbackStep(_Wire):
    """One step of a rollback: a distribution, a kernelspec or a config file."""

    area: RestoreArea
    action: Literal["remove", "install", "replace", "restore-prefix"]
    name: str
    where: str
    interpreter: int | None = None
    before: str | None = None
    after: str | None = None
    description: str = Field(description="The step in one line, as shown to the researcher")


class RollbackPreview(_Wire):
    """``GET rollback/preview``: everything a rollback would change now, in order."""

    target: str
    only: list[str]
    steps: list[RollbackStep]
    unchanged: dict[str, int] = Field(description="Per area, how many items already match")
    notes: list[str] = Field(description="What the rollback cannot do safely and leaves as is")
    fingerprint: str = Field(description="Pass as `plan` to POST rollback to apply exactly this")


class JobProgress(_Wire):
    """How far a job has got."""

    percent: float = 0.0
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    message: str | None = Field(
        default=None,
        description="What the job is doing when counts say nothing, e.g. 'waiting for archive,"
        " ready in about 12 hours: …' while packs come back from archive storage",
    )


class Job(_Wire):
    """A long operation running in the background; poll ``GET jobs/{id}``."""

    id: str
    kind: JobKind
    state: JobState
    description: str
    progress: JobProgress
    created: float
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class JobList(_Wire):
    """``GET jobs``: this server's jobs, newest first."""

    jobs: list[Job]


class Citation(_Wire):
    """Where an agent's statement comes from.

    ``source``: a workspace path (notebook, experiment log, requirements file),
    ``snapshot:<id>``, ``drift-events`` or ``install-history``; ``locator``: ``cell N``
    (from 0), ``line N`` (from 1) or ``event N``.
    """

    source: str
    locator: str
    environment_id: str | None = Field(
        default=None, description="The lab's memory: whose environment's snapshot holds it"
    )
    snapshot_id: str | None = Field(
        default=None, description="The lab's memory: the snapshot holding the cited bytes"
    )


class RiskAssessment(_Wire):
    """The Drift Analyzer's assessment of a CRITICAL drift event, made as it happened."""

    agent: Literal["drift"]
    risk: Literal["HIGH", "MEDIUM", "LOW", "UNKNOWN"]
    time: float
    answer: str
    citations: list[Citation]
    tools_called: list[str]
    refused: list[str] = Field(default_factory=list)
    error: str | None = None


class DriftEvent(_Wire):
    """A change in drift: the changes that appeared and those that went away."""

    id: int
    time: float
    environment_id: str
    baseline: str
    status: DriftStatus
    changes: list[Change]
    resolved: list[Change]
    assessment: RiskAssessment | None = Field(
        default=None, description="The Drift Analyzer's risk assessment (critical events)"
    )


class EventList(_Wire):
    """``GET drift/events``, oldest first."""

    events: list[DriftEvent]


class StreamMessage(_Wire):
    """A message on ``WS drift/stream``: the state on connect, then each event and snapshot."""

    type: Literal["state", "event", "snapshot"]
    drift: DriftState | None = None
    event: DriftEvent | None = None
    snapshot_id: str | None = Field(
        default=None,
        description="For type snapshot: a snapshot just taken (from any client or the CLI's "
        "server job)",
    )


AgentName = Literal["drift", "transfer"]


class ChatRequest(_Wire):
    """``POST chat``: a question to an agent, in a new or a continued conversation."""

    agent: AgentName = Field(
        default="transfer", description="drift: the Drift Analyzer; transfer: Knowledge Transfer"
    )
    question: str = Field(min_length=1, max_length=4000)
    conversation_id: str | None = Field(
        default=None, description="Continue this conversation of the environment; omit to start one"
    )


class ChatChunk(_Wire):
    """One line of the ``POST chat`` stream (``application/x-ndjson``).

    ``start`` (the conversation), ``tool`` (a tool ran: ok, error or refused), ``delta``
    (a piece of the answer's text), then ``done`` (the whole answer, the ``ask --json``
    shape) or ``error``.
    """

    type: Literal["start", "tool", "delta", "done", "error"]
    conversation_id: str | None = None
    agent: str | None = None
    name: str | None = Field(default=None, description="tool: the tool's name")
    status: Literal["ok", "error", "refused"] | None = None
    message: str | None = None
    text: str | None = Field(default=None, description="delta: the next piece of the answer")
    answer: str | None = None
    citations: list[Citation] | None = None
    tools_called: list[str] | None = None
    refused: list[str] | None = None
    error: str | None = Field(default=None, description="done: timeout or provider, if it failed")


class ConversationSummary(_Wire):
    """One of the environment's conversations."""

    id: str
    agent: AgentName
    title: str
    created: float
    updated: float


class ConversationList(_Wire):
    """``GET chat``: the environment's conversations, most recent first."""

    conversations: list[ConversationSummary]


class ChatMessage(_Wire):
    """A turn of a conversation."""

    time: float
    role: Literal["user", "assistant"]
    content: str
    citations: list[Citation]
    tools_called: list[str]


class Conversation(ConversationSummary):
    """``GET chat/{id}``: a conversation with its messages, oldest first."""

    messages: list[ChatMessage]


class PreservedAt(_Wire):
    """Where the lab's memory found a passage: an environment's snapshot, a path, a place."""

    environment_id: str
    researcher: str
    snapshot_id: str = Field(description="Empty for the install history")
    path: str = Field(description="Empty for a snapshot's manifest or summary, or a history")
    locator: str


class KBResult(_Wire):
    """A passage of the lab's knowledge base (this workspace's, or the lab's memory)."""

    source: str
    locator: str
    score: float
    text: str
    kind: Literal["notebook", "manifest", "summary", "install-history", "experiment"]
    lab_id: str | None = Field(default=None, description="The lab's memory it came from")
    shared: bool | None = Field(default=None, description="From a snapshot shared with the lab")
    citation: PreservedAt | None = None


class PreservedCell(_Wire):
    """``GET kb/cell``: a cited notebook cell as the lab's memory's snapshot holds it."""

    environment_id: str
    lab_id: str
    snapshot_id: str
    path: str
    cell: int
    cells: int = Field(description="How many cells the notebook has")
    cell_type: str
    source: str
    outputs: list[str] = Field(description="Each output as text (streams, text/plain, errors)")


class KBSearchResults(_Wire):
    """``GET kb/search?q=&k=``: the best passages first."""

    results: list[KBResult]
    message: str | None = Field(default=None, description="Why there are none, if none")
