"""Hierarchical chunking: parents of ~1,500 tokens made of children of ~300.

Search runs on the children (small, precise); answers quote their parent (enough context
to be read alone). A child keeps the locator of its first section, so a citation opens
the notebook at the right cell; a section longer than a child is split by lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from westtek_core.kb.documents import Document, Section

PARENT_TOKENS = 1500
CHILD_TOKENS = 300
_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to what a sub-word tokenizer counts for prose."""
    return len(_TOKEN.findall(text))


@dataclass
class Child:
    """A searchable piece: its locator and text."""

    locator: str
    text: str


@dataclass
class Parent:
    """The passage answers quote, made of children."""

    children: list[Child] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The passage."""
        return "\n\n".join(c.text for c in self.children)


def _split(section: Section, limit: int) -> list[Section]:
    if count_tokens(section.text) <= limit:
        return [section]
    pieces: list[Section] = []
    lines: list[str] = []
    size = 0
    for line in section.text.splitlines():
        tokens = count_tokens(line)
        if lines and size + tokens > limit:
            pieces.append(Section(section.locator, "\n".join(lines)))
            lines, size = [], 0
        # a single line over the limit is cut by words (in one pass: a megabyte line of
        # words would otherwise be re-split once per piece, quadratic in its length)
        if tokens > limit:
            words = line.split()
            counts = [count_tokens(word) for word in words]
            left = sum(counts)
            step, start = limit // 2 or 1, 0
            while left > limit:
                pieces.append(Section(section.locator, " ".join(words[start : start + step])))
                left -= sum(counts[start : start + step])
                start += step
            line, tokens = " ".join(words[start:]), left
        lines.append(line)
        size += tokens
    if lines:
        pieces.append(Section(section.locator, "\n".join(lines)))
    return pieces


def chunk_document(
    document: Document, child_tokens: int = CHILD_TOKENS, parent_tokens: int = PARENT_TOKENS
) -> list[Parent]:
    """Pack a document's sections into children, and children into parents, in order."""
    children: list[Child] = []
    current: Child | None = None
    size = 0
    for piece in (p for s in document.sections for p in _split(s, child_tokens)):
        tokens = count_tokens(piece.text)
        if current is None or size + tokens > child_tokens:
            current = Child(piece.locator, piece.text)
            children.append(current)
            size = tokens
        else:
            current.text += "\n\n" + piece.text
            size += tokens
    parents: list[Parent] = []
    parent_size = parent_tokens + 1
    for child in children:
        tokens = count_tokens(child.text)
        if parent_size + tokens > parent_tokens:
            parents.append(Parent())
            parent_size = 0
        parents[-1].children.append(child)
        parent_size += tokens
    return parents
