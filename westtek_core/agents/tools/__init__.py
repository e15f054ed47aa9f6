"""The agents' tools: the design document's action groups, as plain functions with schemas.

Each tool reads one environment through a :class:`ToolContext` (its service, store, event
log and its lab's knowledge base) and returns a :class:`ToolResult`: JSON ``data`` for a
model to reason over, ``facts`` (sentences that are true of that data, each with the
citations that support it) for the offline provider to compose from, and ``citations``
that resolve to a notebook cell, a file line, a drift event or a snapshot.

Tools never change anything. The two ``Create*Recommendation`` tools only *recommend*
(what to run, and why) and are flagged ``writes=True``: the agent loop offers them only
when the user's own words ask for a recommendation, never because a notebook says so.

Every tool is bound to its context's environment: an ``environment_id`` naming another
environment is refused, and no tool takes an index path or a lab, so nothing outside the
lab's own material can be reached through a tool's arguments. A tool's arguments are a
pydantic model (``arguments``), which is also the JSON schema the models are shown.

Modules: ``results`` (what a tool returns), ``context`` (what it reads through),
``arguments`` (the models and their check), ``drift``, ``packages``, ``environment`` and
``knowledge`` (the tools, by job; ``common`` is what they share) and ``registry`` (TOOLS).
"""

from westtek_core.agents.tools.arguments import ToolArguments, json_schema, validate_arguments
from westtek_core.agents.tools.context import SearchIndex, ToolContext
from westtek_core.agents.tools.drift import (
    CHANGE_ORDER,
    ENVIRONMENT_KINDS,
    change_rank,
    get_drift_events,
    get_drift_history,
    get_snapshot_comparison,
)
from westtek_core.agents.tools.environment import (
    create_rollback_recommendation,
    create_snapshot_recommendation,
    get_environment_config,
    get_environment_details,
    get_environment_notebooks,
    get_researcher_profile,
    get_snapshot_history,
)
from westtek_core.agents.tools.knowledge import (
    get_onboarding_checklist,
    get_transfer_package,
    search_knowledge_base,
)
from westtek_core.agents.tools.packages import (
    get_package_changelog,
    get_package_install_history,
    requirement_files,
)
from westtek_core.agents.tools.registry import TOOLS, Tool, ToolFunction, call_tool
from westtek_core.agents.tools.results import (
    JSON,
    Citation,
    Fact,
    ToolError,
    ToolResult,
    cell_citation,
    dumps,
    event_citation,
    result_payload,
    snapshot_citation,
)

__all__ = [
    "CHANGE_ORDER",
    "ENVIRONMENT_KINDS",
    "JSON",
    "TOOLS",
    "Citation",
    "Fact",
    "SearchIndex",
    "Tool",
    "ToolArguments",
    "ToolContext",
    "ToolError",
    "ToolFunction",
    "ToolResult",
    "call_tool",
    "cell_citation",
    "change_rank",
    "create_rollback_recommendation",
    "create_snapshot_recommendation",
    "dumps",
    "event_citation",
    "get_drift_events",
    "get_drift_history",
    "get_environment_config",
    "get_environment_details",
    "get_environment_notebooks",
    "get_onboarding_checklist",
    "get_package_changelog",
    "get_package_install_history",
    "get_researcher_profile",
    "get_snapshot_comparison",
    "get_snapshot_history",
    "get_transfer_package",
    "json_schema",
    "requirement_files",
    "result_payload",
    "search_knowledge_base",
    "snapshot_citation",
    "validate_arguments",
]
