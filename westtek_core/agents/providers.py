"""The agents' model providers: offline (the default), Amazon Bedrock and OpenAI-compatible.

A provider takes the conversation so far (the user's question, the tool calls made and
their results) and answers one *turn*: either tool calls to make next, or the final text.
The agent loop (``westtek_core.agents.loop``) does everything else — running tools,
refusing write tools, timeouts, citations — so a provider is only a protocol adapter.

``offline`` needs no model and no network: it plans tool calls from the question's intent
keywords, then composes the answer only from the tools' facts and the retrieved passages
that bear on the question, each sentence with its citations; when nothing does, it says so.
``bedrock`` speaks the Bedrock Runtime Converse API with ``toolConfig`` through boto3;
``openai`` speaks ``/v1/chat/completions`` with ``tools`` (vLLM, Ollama, llama.cpp server)
through the standard library.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from westtek_core.agents.tools import (
    ENVIRONMENT_KINDS,
    Citation,
    Fact,
    Tool,
    ToolResult,
    dumps,
)

NOTHING_FOUND = "I found nothing in the lab's material that answers this."


# ---------------------------------------------------------------------------------------------
# The conversation, provider-neutral
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A model's request to run one tool."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Message:
    """One message of a conversation: the user's, the assistant's, or a tool's result."""

    role: str  # user | assistant | tool
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""
    result: ToolResult | None = None
    """A tool message's structured result (the offline provider composes from it)."""
    error: bool = False


@dataclass
class Turn:
    """What a provider answers: tool calls to make, or the final text."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    citations: list[Citation] | None = None
    """Set by providers that know exactly what supports the text (offline)."""


class ProviderError(Exception):
    """The model could not be reached or answered nonsense; the message says which."""


class ProviderTimeout(ProviderError):
    """The model did not answer in time."""


class Provider(LoggingConfigurable):
    """Base of the model providers: one turn of a conversation with tools."""

    request_timeout = Float(
        60.0,
        config=True,
        help="Seconds to wait for one answer of the model before giving up on it.",
    )

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """Answer one turn within ``timeout`` seconds; raise :class:`ProviderError` else."""
        raise NotImplementedError

    def _timeout(self, remaining: float) -> float:
        return max(0.1, min(self.request_timeout, remaining))


# ---------------------------------------------------------------------------------------------
# Offline: deterministic planning and grounded composition
# ---------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have how i if in into is it its itself me my of on or our should so some such than that
    the their them then there these they this those to too was we were what when where which
    while who whom why will with would you your about any all also am just not no nor only
    own same very s t don now use used using uses happen happened get got tell explain show
    lab lab's environment please know""".split()
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_VERSION = re.compile(r"\b\d+(?:\.\d+)+\w*\b")
_SNAPSHOT_ID = re.compile(r"\b[0-9a-f]{8,64}\b")
_EVENT = re.compile(r"\bevent\s*#?\s*(\d+)\b", re.I)

# Words that make a question bear on the environment's drift when asked of the Drift
# Analyzer (which reads the live drift for every question); too common in research
# questions ("value-at-risk", "a structural break") to route the other agents by.
_DRIFT_WORDS = (
    "drift",
    "changed",
    "change",
    "broke",
    "break",
    "risk",
    "critical",
    "danger",
    "safe",
    "upgrade",
    "downgrade",
    "event",
    "running experiment",
)

# A question about the environment's drift, whichever agent is asked.
_DRIFT_QUESTION = re.compile(
    r"\bdrift|\bwhat(?:'s| has| have| was)? changed\b|\bchanged since\b|\bchanges since\b|"
    r"\bsince (?:my|the|our|your) (?:last|latest|previous|most recent|newest) snapshot\b|"
    r"\bsince (?:the )?baseline\b|\b(?:upgrad|downgrad)(?:e|es|ed|ing)\b|\bdanger|"
    r"\bis it safe\b|\bsafe to\b|\bbroke\b|\bbreak (?:my|the|our)\b",
    re.I,
)
_SINCE_LATEST = re.compile(
    r"\bsince (?:my|the|our|your) (?:last|latest|previous|most recent|newest) snapshot\b|"
    r"\bsince I (?:last )?(?:took a |made a )?snapshot",
    re.I,
)


def asks_about_drift(question: str) -> bool:
    """Whether a question asks about the environment's changes (any agent reads the drift)."""
    return _DRIFT_QUESTION.search(question) is not None or _EVENT.search(question) is not None


def drift_arguments(question: str) -> dict[str, Any]:
    """GetDriftEvents' arguments for a question: one event, since the latest snapshot, or none."""
    event = _EVENT.search(question)
    if event:
        return {"event_id": int(event.group(1))}
    if _SINCE_LATEST.search(question):
        return {"since_snapshot_id": "latest"}
    return {}


# Not package names, though they stand where one would ("the kernel upgrade").
_NOT_PACKAGES = frozenset(
    """a an the my our your their this that these those it its any all some every which what
    new old recent last latest previous next major minor patch big small first second
    package packages version versions release releases environment env notebook notebooks
    kernel kernels python interpreter interpreters config configuration extension extensions
    data file files snapshot snapshots baseline drift change changes history install
    installs installed installation upgrade upgrades upgraded downgrade update updates pin
    pinned requirement requirements dependency dependencies library libraries module modules
    now since of to from in on for and or is was be been dangerous safe risky lab break
    breaks broke affect affects affected cause causes hurt matter fail fails work works
    anything something everything me us it them things stuff""".split()
)
_MENTION_PATTERNS = (
    re.compile(
        r"\b([A-Za-z][\w.\-]*[A-Za-z0-9])\s+(?:upgrade|upgrades|downgrade|update|package|"
        r"version|release|pin)\b",
        re.I,
    ),
    re.compile(
        r"\b(?:upgrad\w*|downgrad\w*|updat\w*|install\w*|pinn\w*|uninstall\w*)\s+(?:of\s+)?"
        r"(?:the\s+)?([A-Za-z][\w.\-]*[A-Za-z0-9])",
        re.I,
    ),
    re.compile(r"\b([A-Za-z][\w.\-]*[A-Za-z0-9])\s*(?:==|>=|<=|~=|!=)\s*\d", re.I),
)


def package_mentions(question: str) -> list[str]:
    """Words a question uses as package names ("the pyyaml upgrade", "pyyaml==6.0")."""
    found: list[str] = []
    for pattern in _MENTION_PATTERNS:
        for match in pattern.finditer(question):
            name = match.group(1)
            if name.lower() not in _NOT_PACKAGES and not name.endswith(".ipynb"):
                if name not in found:
                    found.append(name)
    return found


# intent → (keywords, tools): a tool is planned when a keyword appears in the question
_INTENTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("history of drift", "how often", "drift history", "over time"), ("GetDriftHistory",)),
    (
        (
            "notebook",
            "figure",
            "fig",
            "plot",
            "produce",
            "read",
            "data",
            "input",
            "output",
            "csv",
            "dataset",
            "import",
        ),
        ("GetEnvironmentNotebooks",),
    ),
    (("snapshot", "baseline", "restore", "when was"), ("GetSnapshotHistory",)),
    (
        ("config", "kernel", "jupyter_server_config", "extension", "interpreter"),
        ("GetEnvironmentConfig",),
    ),
    (("who ", "researcher", "built", "author", "owner", "created"), ("GetResearcherProfile",)),
    (
        (
            "onboard",
            "get started",
            "getting started",
            "set up",
            "setup",
            "checklist",
            "first steps",
            "successor",
            "new researcher",
            "take over",
        ),
        ("GetOnboardingChecklist",),
    ),
    (
        ("transfer", "summary", "summarise", "summarize", "overview", "hand over", "handover"),
        ("GetTransferPackage",),
    ),
    (
        ("details", "status", "how many", "packages installed", "installed packages"),
        ("GetEnvironmentDetails",),
    ),
)
_PACKAGE_INTENT = (
    "pin",
    "pinned",
    "version",
    "install",
    "why is",
    "why was",
    "upgrade",
    "downgrade",
    "changelog",
    "api",
    "changed in",
    "requirement",
    "history of",
)
_CHANGELOG_INTENT = (
    "changelog",
    "api",
    "break",
    "broke",
    "risk",
    "danger",
    "safe",
    "critical",
    "signature",
    "removed",
    "changed in",
    "what changed",
)
_SNAPSHOT_REQUEST = (
    "recommend a snapshot",
    "snapshot now",
    "take a snapshot",
    "should i snapshot",
    "should i take",
)
_ROLLBACK_REQUEST = ("roll back", "rollback", "revert", "go back", "undo")


def words(text: str) -> list[str]:
    """The significant words of a text, lower-cased (stopwords and one-letter words left out)."""
    return [
        w.lower()
        for w in _WORD.findall(text)
        if w.lower() not in _STOPWORDS and (len(w) > 1 or w.isdigit())
    ]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# Words nearly every passage of a lab's material contains: they count half.
_GENERIC = frozenset(
    """notebook notebooks data read reads file files package packages version versions cell
    code output input run runs python kernel snapshot""".split()
)


def _weight(word: str) -> float:
    if any(ch.isdigit() for ch in word):
        return 2.0  # "figure 3", "1.10", "run 42": the specific part of a question
    return 0.5 if word in _GENERIC else 1.0


def relevance(question_words: Sequence[str], text: str) -> float:
    """The weighted share of the question's significant words a text contains.

    Words are stem-matched; numbers and versions weigh double, words every lab document
    holds ("notebook", "data") half.
    """
    asked = set(question_words)
    if not asked:
        return 0.0
    have = {_stem(w) for w in words(text)}
    total = sum(_weight(w) for w in asked)
    return sum(_weight(w) for w in asked if _stem(w) in have) / total


def authorizes_writes(question: str) -> bool:
    """Whether the user's own words ask for a snapshot or rollback recommendation."""
    lowered = question.lower()
    return "recommend" in lowered or any(
        k in lowered for k in (*_SNAPSHOT_REQUEST, *_ROLLBACK_REQUEST, "should i")
    )


def _question(messages: Sequence[Message]) -> tuple[str, int]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index].content, index
    return "", 0


class OfflineProvider(Provider):
    """Deterministic planning over the tools, answers composed only from what they return.

    Turn 1 plans the tools the question's intent calls for; turn 2 adds the calls that
    need turn 1's results (the changelog of each drifted package, the install history of
    each package the question names); the last turn composes: every sentence of the answer
    is a tool fact or a retrieved passage that shares the question's words, numbered by its
    citations. Nothing is invented, so an unsupported question gets :data:`NOTHING_FOUND`.
    """

    max_facts = Int(12, config=True, help="At most this many statements in one answer.")
    min_passage_relevance = Float(
        0.5,
        config=True,
        help="A retrieved passage is used only when it holds at least this share of the "
        "question's significant words.",
    )

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """Plan the next tool calls, or compose the answer."""
        question, start = _question(messages)
        available = {t.name: t for t in tools}
        made = [c for m in messages[start:] for c in m.tool_calls]
        results = [m for m in messages[start:] if m.role == "tool"]
        if not any(c.id.startswith("offline-1-") for c in made):
            calls = self._first_calls(question, available, made)
            if calls:
                return Turn(tool_calls=calls)
        if not any(c.id.startswith("offline-2-") for c in made):
            calls = self._second_calls(question, available, made, results)
            if calls:
                return Turn(tool_calls=calls)
        return self.compose(question, results)

    # -- planning --------------------------------------------------------------------------

    @staticmethod
    def _call(round_: int, name: str, arguments: dict[str, Any], index: int) -> ToolCall:
        return ToolCall(f"offline-{round_}-{index}", name, arguments)

    def _first_calls(
        self, question: str, available: Mapping[str, Tool], made: Sequence[ToolCall]
    ) -> list[ToolCall]:
        lowered = f" {question.lower()} "
        wanted: list[tuple[str, dict[str, Any]]] = []
        if asks_about_drift(question):  # the loop has usually read it already: same call
            wanted.append(("GetDriftEvents", drift_arguments(question)))
        for keywords, names in _INTENTS:
            if any(k in lowered for k in keywords):
                wanted += [(n, {}) for n in names]
        ids = _SNAPSHOT_ID.findall(question.lower())
        if len(ids) >= 2:
            wanted.append(
                (
                    "GetSnapshotComparison",
                    {"snapshot_id_before": ids[0], "snapshot_id_after": ids[1]},
                )
            )
        if any(k in lowered for k in _PACKAGE_INTENT) or _VERSION.search(question):
            wanted.append(("GetEnvironmentDetails", {}))  # to recognise the package names
        if authorizes_writes(question):
            if any(k in lowered for k in _ROLLBACK_REQUEST):
                target = {"target_snapshot_id": ids[0]} if len(ids) == 1 else {}
                wanted.append(("CreateRollbackRecommendation", target))
            if "snapshot" in lowered:
                wanted.append(("CreateSnapshotRecommendation", {"reason": question.strip()[:200]}))
        done = {(c.name, json.dumps(c.arguments, sort_keys=True)) for c in made}
        calls: list[ToolCall] = []
        for name, arguments in wanted:
            key = (name, json.dumps(arguments, sort_keys=True))
            if name in available and key not in done:
                done.add(key)
                calls.append(self._call(1, name, arguments, len(calls)))
        return calls

    def _second_calls(
        self,
        question: str,
        available: Mapping[str, Tool],
        made: Sequence[ToolCall],
        results: Sequence[Message],
    ) -> list[ToolCall]:
        from packaging.utils import canonicalize_name

        lowered = question.lower()
        installed: dict[str, str] = {}
        live: dict[str, tuple[str | None, str | None]] = {}
        recorded: dict[str, tuple[str | None, str | None]] = {}
        for message in results:
            data = message.result.data if message.result else {}
            for spec in data.get("packages", []) if isinstance(data.get("packages"), list) else []:
                if isinstance(spec, str) and "==" in spec:
                    name = spec.split("==")[0]
                    installed[canonicalize_name(name)] = name
            for change in (data.get("current") or {}).get("changes", []):
                if change.get("kind") == "package" and change.get("before") and change.get("after"):
                    live[str(change["name"])] = (change["before"], change["after"])
            for event in data.get("events", []) if isinstance(data.get("events"), list) else []:
                for change in event.get("changes", []):
                    if change.get("kind") == "package" and change.get("before"):
                        if change.get("after"):
                            recorded[str(change["name"])] = (change["before"], change["after"])
        # the live drift, when it was read, is what the versions are now: an event's may be
        # stale (upgraded again since, or undone)
        has_live = any(
            m.name == "GetDriftEvents" and m.result and "current" in m.result.data for m in results
        )
        drifted = live if has_live else recorded
        named: list[str] = []
        unknown: list[str] = []
        known = installed | {canonicalize_name(n): n for n in drifted}
        for token in _WORD.findall(question):
            found = known.get(canonicalize_name(token))
            if found and found not in named:
                named.append(found)
        if installed or has_live:  # a name the record does not know: the tool says so
            for mention in package_mentions(question):
                if canonicalize_name(mention) not in known and mention not in unknown:
                    unknown.append(mention)
        calls: list[ToolCall] = []
        done = {(c.name, json.dumps(c.arguments, sort_keys=True)) for c in made}

        def add(name: str, arguments: dict[str, Any]) -> None:
            key = (name, json.dumps(arguments, sort_keys=True))
            if name in available and key not in done:
                done.add(key)
                calls.append(self._call(2, name, arguments, len(calls)))

        wants_history = any(k in lowered for k in _PACKAGE_INTENT)
        for name in named[:3]:
            if wants_history:
                add("GetPackageInstallHistory", {"package_name": name})
        for name in unknown[:2]:  # to say, from the record, that it is not there
            add("GetPackageInstallHistory", {"package_name": name})
        wants_changelog = any(k in lowered for k in _CHANGELOG_INTENT)
        versions = _VERSION.findall(question)
        for name in named[:2]:
            if wants_changelog and len(versions) >= 2:
                add(
                    "GetPackageChangelog",
                    {"package_name": name, "old_version": versions[0], "new_version": versions[1]},
                )
        if wants_changelog or "drift" in lowered or _EVENT.search(question):
            focus = {canonicalize_name(n) for n in named + unknown}
            chosen = [n for n in drifted if not focus or canonicalize_name(n) in focus][:3]
            for name in chosen:
                before, after = drifted[name]
                add(
                    "GetPackageChangelog",
                    {"package_name": name, "old_version": before, "new_version": after},
                )
        return calls

    # -- composing -------------------------------------------------------------------------

    def compose(self, question: str, results: Sequence[Message]) -> Turn:
        """The answer: relevant facts and passages, each with numbered citations.

        Facts about one thing (a package, a notebook) are kept only for the things the
        question or a relevant passage names, when it names any; the environment overview
        planned only to recognise package names is left out when other tools answered.
        The live drift comes first (environment changes before the workspace's), then what
        the changelog and the package's history say; drift events recorded earlier are left
        out when the live drift was read, unless the question asks about events or history
        (their versions may be stale). A question about a package that has not changed
        gets that in one line, and what did change.
        """
        asked = words(question)
        lowered = question.lower()
        answered = [(m.name, m.result) for m in results if m.result is not None and not m.error]
        answered.sort(key=lambda item: _COMPOSE_ORDER.get(item[0], len(_COMPOSE_ORDER)))
        unchanged = self._unchanged_answer(question, answered)
        if unchanged is not None:
            return unchanged
        passages = sorted(
            (
                (relevance(asked, f.text), f)
                for _, result in answered
                for f in result.facts
                if f.topic == "passage"
            ),
            key=lambda p: -p[0],
        )
        passages = [p for p in passages if p[0] >= self.min_passage_relevance]
        # an old snapshot's or log's versions never stand beside the live ones
        versions = live_versions(answered)
        passages = [p for p in passages if not states_stale_version(p[1], versions)]
        topics = {
            f.topic
            for _, result in answered
            for f in result.facts
            if f.topic and f.topic != "passage"
        }
        asked_names = {t for t in topics if _is_named(t, asked)}
        named = asked_names | {
            c.source for _, f in passages for c in f.citations if c.source in topics
        }
        others = any(
            name not in ("GetEnvironmentDetails", "SearchKnowledgeBase") and result.facts
            for name, result in answered
        )
        besides_drift = bool(passages) or any(
            name not in ("GetEnvironmentDetails", "SearchKnowledgeBase", "GetDriftEvents")
            and result.facts
            for name, result in answered
        )
        about_drift = asks_about_drift(question) or any(k in lowered for k in _DRIFT_WORDS)
        # what was recorded then (events, install history) gives way to the live state
        # when the question asks about now
        live_read = any(
            n == "GetDriftEvents" and "current" in r.data or n == "GetPackageInstallHistory"
            for n, r in answered
        )
        about_now = about_drift or _NOW.search(question) is not None
        drop_records = live_read and about_now and _EVENT_HISTORY.search(question) is None
        wants_details = any(k in lowered for k in _INTENTS[-1][0])
        chosen: list[Fact] = []
        seen: set[str] = set()
        for name, result in answered:
            if name == "GetEnvironmentDetails" and others and not wants_details:
                continue
            if name == "GetDriftEvents" and not about_drift and besides_drift:
                continue  # the Drift Analyzer reads the drift for every question
            # the live changes are filtered by what the question names, never by a passage
            names = asked_names if name == "GetDriftEvents" else named
            for fact in result.facts:
                if fact.topic == "passage" or fact.text in seen:
                    continue
                if names and fact.topic and fact.topic not in names:
                    continue
                if drop_records and _is_past_record(fact):
                    continue
                seen.add(fact.text)
                chosen.append(fact)
        quoted = [_passage_fact(f, asked) for _, f in passages[:4]]
        statements = chosen[: max(self.max_facts - len(quoted), 0)] + quoted
        if not statements:
            return Turn(text=NOTHING_FOUND, citations=[])
        text, citations = _numbered(statements)
        risk = risk_assessment(results)
        head = ""
        if risk and any(k in lowered for k in _RISK_WORDS):
            head = f"Risk: {risk}. "
        return Turn(text=head + text, citations=citations)

    @staticmethod
    def _unchanged_answer(question: str, answered: Sequence[tuple[str, ToolResult]]) -> Turn | None:
        """A question about the change of packages that did not change: say so, in a line each.

        Then, in one more line, what did change in the environment (from the live drift).
        """
        lowered = question.lower()
        if not (asks_about_drift(question) or any(k in lowered for k in _RISK_WORDS)):
            return None
        statuses = [
            r
            for n, r in answered
            if n == "GetPackageInstallHistory" and "changed_since_baseline" in r.data and r.facts
        ]
        if not statuses or any(r.data["changed_since_baseline"] for r in statuses):
            return None
        if any(n == "GetPackageChangelog" for n, _ in answered):
            return None  # two versions were named: the changelog answers
        statements = [r.facts[0] for r in statuses]
        drift = next(
            (r for n, r in answered if n == "GetDriftEvents" and "current" in r.data), None
        )
        if drift is not None:
            current = drift.data["current"]
            environment = [
                c for c in current.get("changes", []) if c.get("kind") in ENVIRONMENT_KINDS
            ]
            snapshot = str(current.get("baseline") or "")
            if snapshot and environment:
                listed = "; ".join(_change_summary(c) for c in environment[:8])
                more = f" and {len(environment) - 8} more" if len(environment) > 8 else ""
                statements.append(
                    Fact(
                        f"What did change in the environment since snapshot {snapshot[:12]}: "
                        f"{listed}{more}.",
                        drift.facts[0].citations if drift.facts else (),
                    )
                )
            elif snapshot:
                statements.append(
                    Fact(
                        f"Nothing else in the environment has changed since snapshot "
                        f"{snapshot[:12]}.",
                        drift.facts[0].citations if drift.facts else (),
                    )
                )
        text, citations = _numbered(statements)
        return Turn(text=text, citations=citations)


# Tool results in the order an answer states them: the live drift, then what the
# changelog and the package's own history say about it, then the rest as planned.
_COMPOSE_ORDER = {"GetDriftEvents": 0, "GetPackageChangelog": 1, "GetPackageInstallHistory": 2}

_EVENT_HISTORY = re.compile(
    r"\bevents?\b|\bhistory\b|\bwhen\b|\brecorded\b|\bover time\b|\bhow often\b", re.I
)


_NOW = re.compile(r"\bnow\b|\bcurrent|\btoday\b|\binstalled\b|\bdanger|\brisk|\bsafe\b", re.I)


def _is_past_record(fact: Fact) -> bool:
    """A fact only the event log supports: what was recorded then, not what is there now."""
    return bool(fact.citations) and all(
        c.source in ("drift-events", "install-history") for c in fact.citations
    )


def _change_summary(change: Mapping[str, Any]) -> str:
    """A drift change in a few words: ``westtek-api-pkg 1.0.0 → 2.0.0``, ``kernel x modified``."""
    kind, name = change.get("kind"), change.get("name")
    before, after = change.get("before"), change.get("after")
    if kind == "package" and before and after:
        return f"{name} {before} → {after}"
    if kind == "package":
        return f"{name} {change.get('change')}"
    return f"{kind} {name} {change.get('change')}"


def _numbered(statements: Sequence[Fact]) -> tuple[str, list[Citation]]:
    """The answer's text, a statement a line with its citation marks, and the citations."""
    citations: list[Citation] = []
    lines = []
    for fact in statements:
        marks = []
        for citation in fact.citations:
            if citation not in citations:
                citations.append(citation)
            marks.append(f"[{citations.index(citation) + 1}]")
        lines.append(f"- {fact.text}" + (" " + "".join(dict.fromkeys(marks)) if marks else ""))
    return "From the lab's records:\n" + "\n".join(lines), citations


_RISK_WORDS = ("risk", "danger", "safe", "break", "broke", "critical", "assess")


def _is_named(topic: str, asked: Sequence[str]) -> bool:
    """Whether the question's words name ``topic`` (a package or a workspace path)."""
    from packaging.utils import canonicalize_name

    lowered = topic.lower()
    base = lowered.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if base.endswith((".ipynb", ".json", ".md", ".txt")) else base
    canonical = canonicalize_name(topic)
    return any(w in (lowered, base, stem) or canonicalize_name(w) == canonical for w in asked)


def _passage_fact(fact: Fact, asked: Sequence[str], width: int = 320) -> Fact:
    """A passage shortened around the sentences that share the question's words."""
    text = " ".join(re.sub(r"```\w*", " ", fact.text).split())  # code fences say nothing
    if len(text) > width:
        sentences = re.split(r"(?<=[.!?])\s+", text)
        ranked = sorted(range(len(sentences)), key=lambda i: -relevance(asked, sentences[i]))
        keep: dict[int, str] = {}
        for index in ranked:
            sentence = sentences[index]
            if sum(len(s) for s in keep.values()) + len(sentence) > width and keep:
                break
            keep[index] = sentence[:width]  # one over-long sentence is cut, not dropped
        text = " … ".join(keep[i] for i in sorted(keep))
    source = fact.citations[0].source if fact.citations else "the knowledge base"
    if source.startswith("snapshot:"):
        source = f"snapshot {source.removeprefix('snapshot:')[:12]}"
    return Fact(f"{source}: “{text}”", fact.citations, "passage")


_PINNED_VERSION = re.compile(r"([A-Za-z][\w.\-]*)(?:==|\s+)(\d+(?:\.\d+)+[\w.+\-]*)")


def live_versions(results: Sequence[tuple[str, ToolResult]]) -> dict[str, str | None]:
    """Package → version installed now, as the tools read it live (None: not installed)."""
    from packaging.utils import canonicalize_name

    versions: dict[str, str | None] = {}
    for name, result in results:
        data = result.data
        if name == "GetEnvironmentDetails":
            for spec in data.get("packages", []):
                if isinstance(spec, str) and "==" in spec:
                    package, version = spec.split("==", 1)
                    versions[canonicalize_name(package)] = version
        elif name == "GetPackageInstallHistory" and "installed" in data:
            versions[canonicalize_name(str(data["package"]))] = data["installed"]
        elif name == "GetDriftEvents":
            for change in (data.get("current") or {}).get("changes", []):
                if change.get("kind") == "package":
                    versions[canonicalize_name(str(change["name"]))] = change.get("after")
    return versions


def states_stale_version(passage: Fact, versions: Mapping[str, str | None]) -> bool:
    """Whether a record of the environment's state gives a package another version than now.

    Records are snapshots' manifests and summaries and the install history; a requirement
    file or a notebook declaring a version is what the lab asked for, never stale.
    """
    from packaging.utils import canonicalize_name

    records = [
        c
        for c in passage.citations
        if c.source.startswith("snapshot:") or c.source == "install-history"
    ]
    if not records:
        return False
    for name, version in _PINNED_VERSION.findall(passage.text):
        canonical = canonicalize_name(name)
        if canonical in versions and versions[canonical] != version:
            return True
    return False


def risk_assessment(results: Sequence[Message]) -> str | None:
    """HIGH, MEDIUM or LOW from the drift and changelog results, None without drift data."""
    critical = minor = 0
    broken_uses = 0
    saw_drift = False
    for message in results:
        if message.result is None or message.error:
            continue
        data = message.result.data
        if message.name == "GetDriftEvents":
            saw_drift = True
            changes = list((data.get("current") or {}).get("changes", []))
            for event in data.get("events", []):
                changes += event.get("changes", [])
            critical += sum(1 for c in changes if c.get("severity") == "critical")
            minor += sum(1 for c in changes if c.get("severity") == "minor")
        if message.name == "GetPackageChangelog":
            broken_uses += sum(
                1 for c in data.get("api_changes", []) if c.get("breaking") and c.get("used_by")
            )
    if not saw_drift:
        return None
    if broken_uses:
        return "HIGH"
    if critical:
        return "MEDIUM"
    return "LOW" if not minor else "LOW (minor drift only)"


# ---------------------------------------------------------------------------------------------
# Amazon Bedrock (Converse API)
# ---------------------------------------------------------------------------------------------


def _from_env(name: str, fallback: str) -> Callable[[Any], str]:
    """A trait default: the environment variable ``name``, else ``fallback``."""
    return lambda _provider: os.environ.get(name, fallback)


class BedrockProvider(Provider):
    """Amazon Bedrock's Converse API with tools (``bedrock-runtime`` through boto3)."""

    model_id = Unicode(
        config=True,
        help="The Bedrock model or inference profile to converse with. "
        "Default: $WESTTEK_BEDROCK_MODEL_ID, else Anthropic Claude 3.5 Sonnet.",
    )

    _default_model_id = default("model_id")(
        _from_env("WESTTEK_BEDROCK_MODEL_ID", "anthropic.claude-3-5-sonnet-20240620-v1:0")
    )

    region = Unicode(
        config=True,
        help="AWS region of the Bedrock endpoint. Default: $AWS_REGION, else us-east-1.",
    )

    @default("region")
    def _default_region(self) -> str:
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    endpoint_url = Unicode(
        "",
        config=True,
        help="Another Bedrock Runtime endpoint (a VPC endpoint, or a local one in tests).",
    )
    max_tokens = Int(2048, config=True, help="Most tokens the model may answer with.")
    temperature = Float(0.0, config=True, help="Sampling temperature (0: most deterministic).")

    def _client(self, timeout: float) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=min(timeout, 10),
            read_timeout=timeout,
            retries={"max_attempts": 1, "mode": "standard"},
        )
        return boto3.client(
            "bedrock-runtime",
            region_name=self.region,
            endpoint_url=self.endpoint_url or None,
            config=config,
        )

    def request(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> dict[str, Any]:
        """The ``converse`` keyword arguments (a pure builder, tested as a whole dict)."""
        converse: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "user":
                _append(converse, "user", [{"text": message.content}])
            elif message.role == "assistant":
                blocks: list[dict[str, Any]] = (
                    [{"text": message.content}] if message.content else []
                )
                blocks += [
                    {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}}
                    for c in message.tool_calls
                ]
                _append(converse, "assistant", blocks)
            else:
                _append(
                    converse,
                    "user",
                    [
                        {
                            "toolResult": {
                                "toolUseId": message.tool_call_id,
                                "content": [{"json": json.loads(message.content)}],
                                "status": "error" if message.error else "success",
                            }
                        }
                    ],
                )
        kwargs: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": system}],
            "messages": converse,
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }
        if tools:
            kwargs["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": t.name,
                            "description": t.description,
                            "inputSchema": {"json": t.parameters},
                        }
                    }
                    for t in tools
                ]
            }
        return kwargs

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """One Converse call."""
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        try:
            response = self._client(self._timeout(timeout)).converse(
                **self.request(system, messages, tools)
            )
        except ReadTimeoutError as e:
            raise ProviderTimeout(f"Amazon Bedrock did not answer in time ({e})") from e
        except ClientError as e:
            error = e.response.get("Error", {})
            raise ProviderError(
                f"Amazon Bedrock refused the request: {error.get('Code')}: {error.get('Message')}"
            ) from e
        except BotoCoreError as e:
            raise ProviderError(f"Amazon Bedrock could not be reached: {e}") from e
        content = ((response.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(str(b["text"]) for b in content if "text" in b)
        calls = [
            ToolCall(
                str(b["toolUse"]["toolUseId"]),
                str(b["toolUse"]["name"]),
                dict(b["toolUse"].get("input") or {}),
            )
            for b in content
            if "toolUse" in b
        ]
        return Turn(text=text, tool_calls=calls)


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Converse wants user and assistant turns to alternate: merge consecutive ones."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible chat completions
# ---------------------------------------------------------------------------------------------


class OpenAIProvider(Provider):
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint with tools."""

    base_url = Unicode(
        config=True,
        help="The API's base URL, up to and including /v1 (vLLM, Ollama, llama.cpp server). "
        "Default: $OPENAI_BASE_URL, else http://127.0.0.1:8000/v1.",
    )

    _default_base_url = default("base_url")(
        _from_env("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    )

    model = Unicode(
        config=True,
        help="The model name the endpoint serves. Default: $OPENAI_MODEL, else 'default'.",
    )

    _default_model = default("model")(_from_env("OPENAI_MODEL", "default"))

    api_key = Unicode(
        config=True,
        help="Bearer token for the endpoint (empty: none). Default: $OPENAI_API_KEY.",
    )

    _default_api_key = default("api_key")(_from_env("OPENAI_API_KEY", ""))

    max_tokens = Int(2048, config=True, help="Most tokens the model may answer with.")
    temperature = Float(0.0, config=True, help="Sampling temperature (0: most deterministic).")

    def request(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> dict[str, Any]:
        """The chat-completions request body (a pure builder, tested as a whole dict)."""
        chat: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for message in messages:
            if message.role == "tool":
                chat.append(
                    {
                        "role": "tool",
                        "tool_call_id": message.tool_call_id,
                        "content": message.content,
                    }
                )
            elif message.role == "assistant":
                entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
                if message.tool_calls:
                    entry["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": dumps(c.arguments)},
                        }
                        for c in message.tool_calls
                    ]
                chat.append(entry)
            else:
                chat.append({"role": "user", "content": message.content})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in tools
            ]
            body["tool_choice"] = "auto"
        return body

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """One chat-completions call."""
        import socket

        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = json.dumps(self.request(system, messages, tools)).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self._timeout(timeout)) as response:
                payload = json.loads(response.read())
        except TimeoutError as e:
            raise ProviderTimeout(
                f"the model at {self.base_url} did not answer within "
                f"{time.monotonic() - started:.0f} s"
            ) from e
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode("utf-8", "replace")
            raise ProviderError(f"the model at {self.base_url} answered {e.code}: {detail}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise ProviderTimeout(f"the model at {self.base_url} did not answer in time") from e
            raise ProviderError(
                f"the model at {self.base_url} could not be reached: {e.reason}"
            ) from e
        except ValueError as e:
            raise ProviderError(f"the model at {self.base_url} answered something not JSON") from e
        try:
            message = payload["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as e:
            raise ProviderError(f"the model at {self.base_url} answered without a message") from e
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {"_unparsable": function.get("arguments")}
            calls.append(ToolCall(str(call.get("id")), str(function.get("name")), arguments))
        return Turn(text=str(message.get("content") or ""), tool_calls=calls)


PROVIDERS: dict[str, type[Provider]] = {
    "offline": OfflineProvider,
    "bedrock": BedrockProvider,
    "openai": OpenAIProvider,
}
"""Provider short names, as ``AgentLoop.provider`` accepts them."""
