"""PII and credential redaction for text before it is indexed.

What is redacted: e-mail addresses, phone numbers, AWS access key ids and secret keys,
bearer/API tokens of the common services, private-key blocks, URL credentials, ``.netrc``
lines and ``name = "value"`` assignments (``os.environ["NAME"] = …`` too) whose name says
secret (``token``, ``password``…).
"""

from __future__ import annotations

import re

from westtek_core.capture.secret_rules import is_secret_name

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S
        ),
    ),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")),
    (
        "token",
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20,})\b"
        ),
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),
    ("url-credentials", re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")),
    # international (+…), bracketed area codes, or the dashed NNN-NNN-NNNN form: not "1 2 3"
    (
        "phone",
        re.compile(
            r"(?<![\w.+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]?\d{3,4}[ .-]?\d{3,4}"
            r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]\d{4}|\d{3}-\d{3}-\d{4})(?![\w.])"
        ),
    ),
]
# `secret_key = "…"`, `"api_token": "…"`, `PASSWORD=…`, `os.environ["AWS_SECRET_KEY"] = "…"`:
# the value goes, the name stays
_ASSIGNMENT = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>["']?\]?\s*[:=]\s*)(?P<quote>["']?)(?P<value>[^\s"',;)}]{6,})(?P=quote)"""
)
# a .netrc line pasted into a cell or printed by one: `machine h login u password p`
_NETRC = re.compile(
    r"\b(?P<head>(?:machine\s+\S+|default)(?:\s+(?:login|account)\s+\S+)*\s+password\s+)\S+"
)


def redact(text: str) -> tuple[str, int]:
    """``text`` with PII and credentials replaced by ``[redacted <kind>]``; and how many."""
    count = 0

    def assignment(match: re.Match[str]) -> str:
        nonlocal count
        if not is_secret_name(match["name"]):
            return match[0]
        count += 1
        quote = match["quote"]
        return f"{match['name']}{match['sep']}{quote}[redacted secret]{quote}"

    text = _ASSIGNMENT.sub(assignment, text)
    text, n = _NETRC.subn(r"\g<head>[redacted secret]", text)
    count += n
    for kind, pattern in _PATTERNS:
        text, n = pattern.subn(f"[redacted {kind}]", text)
        count += n
    return text, count
