"""Secrets in a text: where they are, and the text with them replaced.

:func:`find_secrets` finds secret values with detect-secrets' plugins (AWS, GitHub,
GitLab, Slack, Stripe, SendGrid, Twilio, Azure storage, JWT, npm, PyPI, OpenAI, basic-auth
URLs, secret keywords…) plus the kinds detect-secrets has no plugin for: private-key blocks
across lines (and cut short), Google API keys, Hugging Face, Databricks, Vault and
fine-grained GitHub tokens, bearer and basic ``Authorization`` headers, Azure SAS
signatures, wandb keys, ``.netrc`` lines and secret-named assignments
(``api_token = "…"``). Only the plugins' regular expressions are used: no plugin ever
verifies a secret over the network. Snapshots (:mod:`.secret_scan`) and the knowledge base
(:mod:`westtek_core.kb.redact`) both redact with it.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from westtek_core.capture.secret_rules import is_secret_name

PRIVATE_KEY = "private-key"


@dataclass(frozen=True, slots=True)
class SecretSpan:
    """A secret value in a text: offsets ``[start, end)`` and what kind of secret it is."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class _Rule:
    """One pattern: the kind it finds, and which group holds the value.

    0 is the whole match; -1 the longest group, or the whole match when every group is
    short (a prefix such as ``(ghp|gho)_``, not the secret).
    """

    kind: str
    pattern: re.Pattern[str]
    group: int = 0


# Kinds detect-secrets has no plugin for.
_OWN_RULES: tuple[_Rule, ...] = (
    _Rule("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    _Rule("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    _Rule("databricks-token", re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?")),
    _Rule("vault-token", re.compile(r"\bhv[sb]\.[A-Za-z0-9_-]{24,}")),
    _Rule("github-token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}")),
    # a digit in it: "Bearer authentication" in prose is no token
    _Rule(
        "bearer-token",
        re.compile(r"(?i)\bbearer\s+((?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{8,}=*)"),
        1,
    ),
    _Rule(
        "basic-auth-header",
        re.compile(r"(?i)\bauthorization\W{0,4}basic\s+([A-Za-z0-9+/]{8,}=*)"),
        1,
    ),
    _Rule("azure-sas-signature", re.compile(r"[?&;]sig=([A-Za-z0-9%+/]{20,}=*)"), 1),
    _Rule("wandb-api-key", re.compile(r"(?i)wandb.{0,60}?\b([0-9a-f]{40})\b"), 1),
    _Rule(
        "netrc-password",
        re.compile(
            r"\b(?:machine\s+\S+|default)(?:\s+(?:login|account)\s+\S+)*\s+password\s+(\S+)"
        ),
        1,
    ),
)

# `api_token = "…"`, `"client_secret": "…"`, `os.environ["AWS_SECRET_ACCESS_KEY"] = "…"`
_QUOTED_ASSIGNMENT = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)["']?\]?\s*(?:=>|:=|=|:)\s*"""
    r"""(?P<quote>["'])(?P<value>[^"'\n]{4,}?)(?P=quote)"""
)
# `password=…` with no quotes: how config files, .npmrc and .env write secrets; in code
# it is mostly an expression (`token = get_token()`), so it counts only in config files
_BARE_ASSIGNMENT = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=|:)[ \t]*(?P<value>[^\s"'#;,(){}\[\]]{4,})"""
)
_CONFIG_SUFFIXES = frozenset(
    {".cfg", ".conf", ".cnf", ".cf", ".ini", ".toml", ".yaml", ".yml", ".properties", ".env"}
)

_KEY_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d")
_KEY_END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|Private-MAC: *[0-9a-f]+")
_KEY_BODY_LINE = re.compile(r"[ \t]*(?:[A-Za-z0-9+/=]+|[A-Za-z-]+: .*)?[ \t]*\r?")
_KEY_SEARCH_CHARS = 64 * 1024

# A line is looked at only when it holds something one of the rules needs: a word of a
# secret's name or a literal a token format starts with (matched in the lowercased text:
# a case-insensitive pattern costs 25x more), or the run of 11 letters and digits that
# every format without such a literal has (Twilio's `AC…`, Artifactory's `AKC…`/`AP…`,
# Telegram's and Discord's tokens). The rules' own patterns cost ~50x more than these two
# passes, and most lines of notes, data and code have neither.
_WORTH_A_LOOK_LOWER = re.compile(
    r"key|pw|pass|token|secret|cred|auth|bearer|contrase|wandb|machine"
    r"|sig=|://|xox|hooks\.slack|eyj|aiza|akia|asia|abia|acca|a3t|sk[-_]|rk_live|sq0|sg\."
    r"|gh[pousr]_|github_pat|gl[a-z]{2,4}-|hf_|dapi|hv[sb]\.|pypi-|npm_|-us[0-9]"
)
_WORTH_A_LOOK_CASED = re.compile(r"[A-Za-z0-9]{11}")
_RUN = b"a" * 11
# every ASCII letter and digit to "a", everything else to " ": a run is then a plain search,
# ~8x cheaper than the pattern in a text that has none (most notes, data and prose)
_LETTERS_AND_DIGITS = bytes(
    0x61 if chr(i).isascii() and chr(i).isalnum() else 0x20 for i in range(256)
)

_ESCAPE = re.compile(r'\\(["\\/nrt])')
_UNESCAPED = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t"}
# edges of a match that are delimiters, not the secret (a quote, `=`, a space)
_EDGE_CHARS = " \t\r\n\"'`=:,;"
# values that are not secrets: already redacted, or a reference to one
_NOT_A_VALUE = re.compile(r"<redacted-by-westtek>|\[redacted|\$\{|\$\(|%\(|\{\{")


@functools.cache
def _detect_secrets_rules() -> tuple[_Rule, ...]:
    """detect-secrets' regex plugins, imported on first use (they pull in ``requests``).

    Left out: ``PrivateKeyDetector`` (it matches the BEGIN line; the key block is found by
    :func:`_private_keys`), the entropy plugins (every hash, id and inline image would be a
    "secret"), ``IPPublicDetector`` (an address is no credential), and the IBM Cloud IAM,
    IBM COS HMAC, Cloudant and SoftLayer plugins: secret-named assignments (and URLs with
    credentials) that the keyword, assignment and basic-auth rules find as well, whose
    patterns cost half of a whole scan. ``KeywordDetector``'s patterns are applied line
    by line by :func:`_assignment_spans`, as it picks them by file type.
    """
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    plugins: Sequence[type[RegexBasedDetector]] = (
        ArtifactoryDetector,
        AWSKeyDetector,
        AzureStorageKeyDetector,
        BasicAuthDetector,
        DiscordBotTokenDetector,
        GitHubTokenDetector,
        GitLabTokenDetector,
        JwtTokenDetector,
        MailchimpDetector,
        NpmDetector,
        OpenAIDetector,
        PypiTokenDetector,
        SendGridDetector,
        SlackDetector,
        SquareOAuthDetector,
        StripeDetector,
        TelegramBotTokenDetector,
        TwilioKeyDetector,
    )
    rules: list[_Rule] = []
    for plugin in plugins:
        kind = str(plugin.secret_type).lower().replace(" ", "-")
        patterns: Iterable[re.Pattern[str]] = plugin.denylist  # type: ignore[assignment]
        # the value is the longest group when the pattern has one (`aws…key = '(…)'`)
        rules.extend(_Rule(kind, pattern, -1) for pattern in patterns)
    return tuple(rules)


@functools.cache
def _keyword_patterns(file_type_of: str) -> tuple[tuple[re.Pattern[str], int], ...]:
    """detect-secrets' keyword patterns (and the group holding the value) for a file name.

    Config-like files (``.ini``, ``.yaml``…) allow unquoted values; code needs quotes.
    """
    from detect_secrets.plugins.keyword import (
        QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
        REGEX_BY_FILETYPE,
    )
    from detect_secrets.util.filetype import determine_file_type

    table = REGEX_BY_FILETYPE.get(
        determine_file_type(file_type_of), QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
    )
    return tuple(table.items())


@functools.cache
def _keyword_words() -> re.Pattern[str]:
    """Any word of a secret's name, in a lowercased line.

    detect-secrets' keyword list, and the words :func:`is_secret_name` looks for.
    """
    from detect_secrets.plugins.keyword import DENYLIST

    return re.compile("|".join([*DENYLIST, "key", "token", "passphrase", "credential", "auth"]))


def is_config_file(name: str) -> bool:
    """Whether ``name`` is a config file, where secrets are written without quotes.

    ``.ini``/``.toml``/``.yaml``… and dotfiles without a suffix (``.npmrc``, ``.condarc``,
    ``.boto``), plus the files pip, the AWS CLI and dotenv read (``pip.conf``, ``config``).
    """
    base = os.path.basename(name)
    _, suffix = os.path.splitext(base)
    if suffix.lower() in _CONFIG_SUFFIXES:
        return True
    return (base.startswith(".") and "." not in base[1:]) or base in ("config", "credentials")


class _Unescaped:
    r"""A text with string escapes decoded, and the way back to its offsets.

    Notebooks are JSON: a cell's ``password = "x"`` reads ``password = \"x\"`` in the
    file. The rules look at what the researcher typed; each span found maps back to the
    file's offsets, where an escape is never cut in two.
    """

    def __init__(self, text: str) -> None:
        self._escapes: list[int] = []  # view offsets of the characters that were escapes
        if "\\" not in text:
            self.view = text
            return
        pieces: list[str] = []
        last = 0
        for match in _ESCAPE.finditer(text):
            pieces.append(text[last : match.start()])
            self._escapes.append(match.start() - len(self._escapes))
            pieces.append(_UNESCAPED[match[1]])
            last = match.end()
        pieces.append(text[last:])
        self.view = "".join(pieces)

    def offset(self, view_offset: int) -> int:
        """The text's offset of a view offset (each escape before it is one more char)."""
        return view_offset + bisect.bisect_left(self._escapes, view_offset)


def _value_span(match: re.Match[str], group: int) -> tuple[int, int]:
    if group >= 0:
        return match.span(group)
    spans = [match.span(g) for g in range(1, (match.re.groups or 0) + 1) if match.group(g)]
    longest = max(spans, key=lambda s: s[1] - s[0], default=None)
    # a short group names a prefix (`(ghp|gho)_…`), not the secret: take the whole match
    if longest is None or longest[1] - longest[0] < 8:
        return match.span()
    return longest


def _lines_worth_a_look(view: str) -> Iterator[tuple[int, str]]:
    """``(offset, line)`` of each line holding something a rule needs, once each."""
    lower = view.lower()
    if len(lower) != len(view):  # a character whose lowercase is longer ("İ"): same offsets
        lower = "".join(c if len(c.lower()) != 1 else c.lower() for c in view)
    hits = sorted(
        {m.start() for m in _WORTH_A_LOOK_LOWER.finditer(lower)}
        | (
            {m.start() for m in _WORTH_A_LOOK_CASED.finditer(view)}
            if _RUN in view.encode("utf-8", "surrogatepass").translate(_LETTERS_AND_DIGITS)
            else set()
        )
    )
    end = -1
    for hit in hits:
        if hit < end:
            continue
        start = view.rfind("\n", 0, hit) + 1
        end = view.find("\n", hit)
        if end < 0:
            end = len(view)
        yield start, view[start:end]


def _private_keys(view: str) -> Iterator[tuple[int, int]]:
    """Spans of private-key blocks: BEGIN to END, or through the key's lines when cut short."""
    if "PRIVATE KEY" not in view and "PuTTY-User-Key-File-" not in view:
        return
    for begin in _KEY_BEGIN.finditer(view):
        end = _KEY_END.search(view, begin.end(), begin.end() + _KEY_SEARCH_CHARS)
        if end is not None:
            yield begin.start(), end.end()
            continue
        position = begin.end()
        while position < len(view) and view[position] == "\n":
            line_end = view.find("\n", position + 1)
            line_end = len(view) if line_end < 0 else line_end
            if not _KEY_BODY_LINE.fullmatch(view, position + 1, line_end):
                break
            position = line_end
        if position < len(view) and view[position] == "\n":
            position += 1  # the key's last line, cut short (`MIIEvQ… …`)
        # and the key's characters on the line reached: a key pasted on one line (JSON's
        # "\n" decoded or not), or its last line cut short
        rest = re.match(r"[A-Za-z0-9+/=]*", view[position:])
        yield begin.start(), position + (rest.end() if rest else 0)


def _token_spans(lines: Sequence[tuple[int, str]]) -> Iterator[tuple[int, int, str]]:
    """Spans (in the view) of the token formats, run once over the lines joined.

    A call per rule, not per rule and line: these patterns never reach past a line end
    (a span that would is cut at it).
    """
    joined = "\n".join(line for _, line in lines)
    starts: list[int] = []
    position = 0
    for _, line in lines:
        starts.append(position)
        position += len(line) + 1
    for rule in (*_detect_secrets_rules(), *_OWN_RULES):
        for match in rule.pattern.finditer(joined):
            start, end = _value_span(match, rule.group)
            index = bisect.bisect_right(starts, start) - 1
            offset, line = lines[index]
            end = min(end, starts[index] + len(line))
            yield offset + start - starts[index], offset + end - starts[index], rule.kind


def _assignment_spans(line: str, name: str, loose: bool) -> Iterator[tuple[int, int, str]]:
    """Spans (in ``line``) of values assigned to secret-named keys, line by line.

    Line by line as detect-secrets applies its keyword patterns: their values may run to
    the line's end. They cost most of a scan: only where a word of a secret's name is.
    """
    if not _keyword_words().search(line.lower()):
        return
    for pattern, group in _keyword_patterns(name if not loose else "any.cfg"):
        for match in pattern.finditer(line):
            yield (*match.span(group), "secret-keyword")
    for match in _QUOTED_ASSIGNMENT.finditer(line):
        if is_secret_name(match["name"]):
            yield (*match.span("value"), "secret-assignment")
    if loose or is_config_file(name):
        for match in _BARE_ASSIGNMENT.finditer(line):
            if is_secret_name(match["name"]):
                yield (*match.span("value"), "secret-assignment")


def _trimmed(view: str, start: int, end: int) -> tuple[int, int]:
    while start < end and view[start] in _EDGE_CHARS:
        start += 1
    while end > start and view[end - 1] in _EDGE_CHARS:
        end -= 1
    return start, end


def _merged(spans: list[SecretSpan]) -> list[SecretSpan]:
    """Overlapping spans as one (a private key wins the kind: it decides what is done)."""
    merged: list[SecretSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            kind = PRIVATE_KEY if PRIVATE_KEY in (last.kind, span.kind) else last.kind
            merged[-1] = SecretSpan(last.start, max(last.end, span.end), kind)
        else:
            merged.append(span)
    return merged


def find_secrets(text: str, name: str = "", *, loose: bool = False) -> list[SecretSpan]:
    """Every secret value in ``text``, as sorted, non-overlapping spans of ``text``.

    ``name`` (a file name) chooses how strict assignments are: values without quotes count
    in config files only, unless ``loose`` (for an index, where a false alarm costs a word
    of the index, not a researcher's file).
    """
    unescaped = _Unescaped(text)
    view = unescaped.view
    found = [(start, end, PRIVATE_KEY) for start, end in _private_keys(view)]
    lines = list(_lines_worth_a_look(view))
    if lines:
        found.extend(_token_spans(lines))
    for offset, line in lines:
        for start, end, kind in _assignment_spans(line, name, loose):
            found.append((offset + start, offset + end, kind))
    spans = []
    for start, end, kind in found:
        start, end = _trimmed(view, start, end)
        if end <= start or _NOT_A_VALUE.search(view, start, end):
            continue
        spans.append(SecretSpan(unescaped.offset(start), unescaped.offset(end), kind))
    return _merged(spans)


def replace_spans(text: str, spans: Sequence[SecretSpan], marker: str) -> str:
    """``text`` with each span replaced by ``marker`` (``{kind}`` in it names the kind)."""
    out = []
    last = 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(marker.format(kind=span.kind))
        last = span.end
    out.append(text[last:])
    return "".join(out)
