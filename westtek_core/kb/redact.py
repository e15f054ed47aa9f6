"""PII and credential redaction for text before it is indexed.

Credentials are found by the scanner snapshots use
(:func:`westtek_core.capture.secret_text.find_secrets`): private-key blocks, cloud and
service tokens, bearer and basic headers, URL credentials, ``.netrc`` lines and
secret-named assignments, here with unquoted values counted anywhere (a false alarm costs
a word of the index, never a researcher's file). On top of them, PII: e-mail addresses
and phone numbers. :func:`redact_sections` takes a document's sections as one text, so a
private key whose lines are many sections goes as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from westtek_core.capture.secret_text import SecretSpan, find_secrets, replace_spans

_MARKER = "[redacted {kind}]"
_PII: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    # international (+…), bracketed area codes, or the dashed NNN-NNN-NNNN form: not "1 2 3"
    (
        "phone",
        re.compile(
            r"(?<![\w.+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]?\d{3,4}[ .-]?\d{3,4}"
            r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]\d{4}|\d{3}-\d{3}-\d{4})(?![\w.])"
        ),
    ),
]


def _without_pii(text: str) -> tuple[str, int]:
    count = 0
    for kind, pattern in _PII:
        text, n = pattern.subn(_MARKER.format(kind=kind), text)
        count += n
    return text, count


def redact(text: str) -> tuple[str, int]:
    """``text`` with PII and credentials replaced by ``[redacted <kind>]``; and how many."""
    spans = find_secrets(text, loose=True)
    text, count = _without_pii(replace_spans(text, spans, _MARKER))
    return text, len(spans) + count


def redact_sections(texts: Sequence[str]) -> tuple[list[str], int]:
    """Each of ``texts`` (a document's sections, in order) redacted; and how many redactions.

    A secret crossing sections is replaced in each section it touches.
    """
    spans = find_secrets("\n".join(texts), loose=True)
    redacted: list[str] = []
    total = len(spans)
    start = 0
    for text in texts:
        end = start + len(text)
        inside = [
            SecretSpan(max(s.start, start) - start, min(s.end, end) - start, s.kind)
            for s in spans
            if s.start < end and s.end > start
        ]
        clean, count = _without_pii(replace_spans(text, inside, _MARKER))
        redacted.append(clean)
        total += count
        start = end + 1  # the joining newline
    return redacted, total
