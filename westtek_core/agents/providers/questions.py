"""Reading a question without a model: its words, what it asks about, what it allows.

The agent loop uses this to decide whether a question is about drift (the live drift is
then read first) and whether the user's own words ask for a recommendation; the offline
provider, to plan tool calls and to rank passages by how much of the question they hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have how i if in into is it its itself me my of on or our should so some such than that
    the their them then there these they this those to too was we were what when where which
    while who whom why will with would you your about any all also am just not no nor only
    own same very s t don now use used using uses happen happened get got tell explain show
    lab lab's environment please know""".split()
)
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
"""A word of a question: a package name, a version or a path counts as one."""
VERSION = re.compile(r"\b\d+(?:\.\d+)+\w*\b")
"""A version a question names (``1.10``, ``2.0.0rc1``)."""
SNAPSHOT_ID = re.compile(r"\b[0-9a-f]{8,64}\b")
"""A snapshot id or prefix a question names."""
EVENT = re.compile(r"\bevent\s*#?\s*(\d+)\b", re.I)
"""A drift event a question names by number (``event 3``)."""


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
    return _DRIFT_QUESTION.search(question) is not None or EVENT.search(question) is not None


def drift_arguments(question: str) -> dict[str, Any]:
    """GetDriftEvents' arguments for a question: one event, since the latest snapshot, or none."""
    event = EVENT.search(question)
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


_SNAPSHOT_REQUEST = (
    "recommend a snapshot",
    "snapshot now",
    "take a snapshot",
    "should i snapshot",
    "should i take",
)
ROLLBACK_REQUEST = ("roll back", "rollback", "revert", "go back", "undo")
"""Words that ask for a rollback (a recommendation of one, when the user says them)."""


def words(text: str) -> list[str]:
    """The significant words of a text, lower-cased (stopwords and one-letter words left out)."""
    return [
        w.lower()
        for w in WORD.findall(text)
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


def asks_to_choose_remedy(question: str) -> bool:
    """Whether the question asks which to do, a snapshot or a rollback (not for both)."""
    lowered = f" {question.lower()} "
    both = "snapshot" in lowered and any(k in lowered for k in ROLLBACK_REQUEST)
    return both and (" or " in lowered or " whether " in lowered)


def authorizes_writes(question: str) -> bool:
    """Whether the user's own words ask for a snapshot or rollback recommendation."""
    lowered = question.lower()
    return "recommend" in lowered or any(
        k in lowered for k in (*_SNAPSHOT_REQUEST, *ROLLBACK_REQUEST, "should i")
    )
