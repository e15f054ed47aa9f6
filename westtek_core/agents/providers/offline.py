"""The offline provider: deterministic planning over the tools, answers only from them.

It needs no model and no network: it plans tool calls from the question's intent
keywords, then composes the answer only from the tools' facts and the retrieved passages
that bear on the question, each sentence with its citations; when nothing does, it says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from traitlets import Float, Int

from westtek_core.agents.providers.base import NOTHING_FOUND, Message, Provider, ToolCall, Turn
from westtek_core.agents.providers.evidence import (
    live_versions,
    risk_assessment,
    states_stale_version,
)
from westtek_core.agents.providers.questions import (
    EVENT,
    ROLLBACK_REQUEST,
    SNAPSHOT_ID,
    VERSION,
    WORD,
    asks_about_drift,
    asks_to_choose_remedy,
    authorizes_writes,
    drift_arguments,
    package_mentions,
    relevance,
    words,
)
from westtek_core.agents.tools import ENVIRONMENT_KINDS, Citation, Fact, Tool, ToolResult

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
        ids = SNAPSHOT_ID.findall(question.lower())
        if len(ids) >= 2:
            wanted.append(
                (
                    "GetSnapshotComparison",
                    {"snapshot_id_before": ids[0], "snapshot_id_after": ids[1]},
                )
            )
        if any(k in lowered for k in _PACKAGE_INTENT) or VERSION.search(question):
            wanted.append(("GetEnvironmentDetails", {}))  # to recognise the package names
        # a choice between the two waits for the drift (the second round)
        if authorizes_writes(question) and not asks_to_choose_remedy(question):
            if any(k in lowered for k in ROLLBACK_REQUEST):
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
        for token in WORD.findall(question):
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

        if authorizes_writes(question) and asks_to_choose_remedy(question):
            add(*self._remedy(results))
        wants_history = any(k in lowered for k in _PACKAGE_INTENT)
        for name in named[:3]:
            if wants_history:
                add("GetPackageInstallHistory", {"package_name": name})
        for name in unknown[:2]:  # to say, from the record, that it is not there
            add("GetPackageInstallHistory", {"package_name": name})
        wants_changelog = any(k in lowered for k in _CHANGELOG_INTENT)
        versions = VERSION.findall(question)
        for name in named[:2]:
            if wants_changelog and len(versions) >= 2:
                add(
                    "GetPackageChangelog",
                    {"package_name": name, "old_version": versions[0], "new_version": versions[1]},
                )
        if wants_changelog or "drift" in lowered or EVENT.search(question):
            focus = {canonicalize_name(n) for n in named + unknown}
            chosen = [n for n in drifted if not focus or canonicalize_name(n) in focus][:3]
            for name in chosen:
                before, after = drifted[name]
                add(
                    "GetPackageChangelog",
                    {"package_name": name, "old_version": before, "new_version": after},
                )
        return calls

    @staticmethod
    def _remedy(results: Sequence[Message]) -> tuple[str, dict[str, Any]]:
        """Rollback when the drift breaks what the notebooks use, else a snapshot.

        The drift is the live one when it was read, else that of the events read.
        """
        changes: list[Mapping[str, Any]] = []
        status = "unknown"
        for message in results:
            if message.name != "GetDriftEvents" or not message.result:
                continue
            data = message.result.data
            if data.get("current"):
                changes, status = data["current"].get("changes", []), data["current"]["status"]
                break
            for event in data.get("events", []):
                changes += event.get("changes", [])
                status = str(event.get("status") or status)
        if any(c.get("severity") == "critical" for c in changes):
            return "CreateRollbackRecommendation", {}
        drift = str(status).replace("_", " ").lower()
        return "CreateSnapshotRecommendation", {
            "reason": f"the environment works for its notebooks as it is (drift: {drift})"
        }

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
