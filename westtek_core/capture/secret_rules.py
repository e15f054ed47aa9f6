"""Which files are secrets, and how secret values are redacted from Jupyter config files.

Two mechanisms, both off when a capture includes secrets:

* **exclusion** of the well-known credential locations (:data:`CREDENTIAL_LOCATIONS`:
  ``.netrc``, ``.aws/credentials``, ``.ssh/``, ``~/.config/gcloud/``…), of dotenv files,
  and of ``*.pem``/``*.key`` files holding a private key (a cheap look at content); what
  other files hold is scanned by :mod:`westtek_core.capture.secret_scan`;
* **redaction** of secret-looking settings in Jupyter config files: the literal of
  ``c.ServerApp.token = '…'``, ``"password": "…"`` in JSON, a secret-named key of a dict
  (``{"GITHUB_TOKEN": "…"}``), and any URL with embedded credentials, become
  :data:`REDACTION_MARKER`. An empty value is kept: ``token = ''`` *disables* auth, it is
  not a secret, and changing it would change behaviour.

:func:`assignments` is the one walk over a Python config file's settings: redaction finds
the secret-named ones there, and rollback the redacted ones, to put the live values back.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REDACTION_MARKER = "<redacted-by-westtek>"

# A setting or key is secret when its name contains one of these words…
_SECRET_NAME_RE = re.compile(
    r"token|passw(?:or)?d|passphrase|secret|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credential|auth[_-]?key|authorization",
    re.IGNORECASE,
)
# …unless it names a file, a class, an endpoint or a switch rather than a value.
_NOT_SECRET_SUFFIX_RE = re.compile(
    r"(_file|_path|_dir|_class|_url|_uri|_endpoint|_required|_expiry|_expires|_ttl|_length)$",
    re.IGNORECASE,
)
_URL_CREDENTIALS_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_PRIVATE_KEY_RE = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_JSON_SECRET_TEXT_RE = re.compile(
    r'"[^"]*(?:token|passw(?:or)?d|secret|api[_-]?key|credential)[^"]*"\s*:\s*"[^"]+"',
    re.IGNORECASE,
)

_DOTENV_TEMPLATES = frozenset({".example", ".sample", ".template", ".dist", ".defaults"})

CREDENTIAL_LOCATIONS: dict[str, str] = {
    # credentials of tools: never part of an environment, always a secret
    ".ssh/": "ssh-directory",
    ".gnupg/": "gnupg-directory",
    ".netrc": "netrc",  # also where wandb and many CLIs keep their API keys
    "_netrc": "netrc",
    ".pypirc": "pypirc",
    ".git-credentials": "git-credentials",
    ".pgpass": "pgpass",
    ".my.cnf": "mysql-credentials",
    ".aws/credentials": "aws-credentials",
    ".aws/sso/cache/": "aws-sso-cache",
    ".aws/cli/cache/": "aws-cli-cache",
    ".s3cfg": "s3cmd-credentials",
    ".boto": "boto-credentials",
    ".passwd-s3fs": "s3fs-credentials",
    ".docker/config.json": "docker-credentials",
    ".kube/config": "kube-config",
    ".config/gcloud/": "gcloud-credentials",  # credentials.db, access tokens, ADC
    "application_default_credentials.json": "gcloud-credentials",
    ".azure/": "azure-credentials",
    ".huggingface/token": "huggingface-token",
    "huggingface/token": "huggingface-token",  # $HF_HOME (~/.cache/huggingface)
    "huggingface/stored_tokens": "huggingface-token",
    ".kaggle/kaggle.json": "kaggle-credentials",
    "kaggle/kaggle.json": "kaggle-credentials",  # ~/.config/kaggle
    ".databrickscfg": "databricks-config",
    "gh/hosts.yml": "github-cli-token",  # ~/.config/gh
    "rclone/rclone.conf": "rclone-config",
    ".vault-token": "vault-token",
    ".terraform.d/credentials.tfrc.json": "terraform-token",
    "secrets.yaml": "secrets-file",
    "secrets.yml": "secrets-file",
    "secrets.json": "secrets-file",
    "secrets.toml": "secrets-file",  # Streamlit's .streamlit/secrets.toml too
    "client_secret*.json": "oauth-client-secret",
    # Jupyter's own keys: the notebook signing key, cookie secrets, kernel connection files
    "notebook_secret": "notebook-signing-key",
    "jupyterhub_cookie_secret": "cookie-secret",
    "jupyter_cookie_secret": "cookie-secret",
    "jupyter/runtime/": "jupyter-runtime",
    # private keys and key stores by name; any other file holding a key is found by content
    "id_rsa": "private-key",
    "id_dsa": "private-key",
    "id_ecdsa": "private-key",
    "id_ed25519": "private-key",
    "id_ecdsa_sk": "private-key",
    "id_ed25519_sk": "private-key",
    "identity": "private-key",
    "*.p12": "keystore",
    "*.pfx": "keystore",
    "*.jks": "keystore",
    "*.keystore": "keystore",
}
"""The well-known credential locations a capture leaves out: path pattern → kind reported.

A pattern without a slash is a file name anywhere; ``parent/name`` matches a path ending
with those components; a trailing ``/`` makes it a whole folder; ``*``, ``?`` and ``[…]``
glob within one component. ``SecretScanner.credential_locations`` (configurable) starts
from this table.
"""

_KEY_SUFFIXES = (".pem", ".key")
_DOTENV_SUFFIX = ".env"

_GLOB_CHARS = frozenset("*?[")


class CredentialLocations:
    """Tell whether a path of a walked tree is a credential location, by a table of patterns.

    Looked up by the path's last component (a dict for plain names, a few globs), so a walk
    pays one lookup per entry whatever the size of the table.
    """

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = dict(table)
        # (name, is_dir) → [(parent components, kind)]
        self._plain: dict[tuple[str, bool], list[tuple[tuple[str, ...], str]]] = {}
        self._globbed: list[tuple[str, bool, tuple[str, ...], str]] = []
        for pattern, kind in self.table.items():
            is_dir = pattern.endswith("/")
            parts = tuple(p for p in pattern.strip("/").split("/") if p)
            if not parts:
                continue
            *parents, name = parts
            if _GLOB_CHARS & set(name):
                self._globbed.append((name, is_dir, tuple(parents), kind))
            else:
                self._plain.setdefault((name, is_dir), []).append((tuple(parents), kind))

    def kind_of(self, rel: str, is_dir: bool) -> str | None:
        """The kind of credential at ``rel`` (a POSIX path relative to the walked root)."""
        parts = rel.split("/")
        name = parts[-1]
        for parents, kind in self._plain.get((name, is_dir), ()):
            if _parents_match(parts, parents):
                return kind
        for glob, glob_is_dir, parents, kind in self._globbed:
            if (
                glob_is_dir == is_dir
                and fnmatch.fnmatchcase(name, glob)
                and _parents_match(parts, parents)
            ):
                return kind
        return None


def _parents_match(parts: list[str], parents: tuple[str, ...]) -> bool:
    if not parents:
        return True
    if len(parts) - 1 < len(parents):
        return False
    above = parts[len(parts) - 1 - len(parents) : -1]
    return all(fnmatch.fnmatchcase(a, p) for a, p in zip(above, parents, strict=True))


DEFAULT_CREDENTIAL_LOCATIONS = CredentialLocations(CREDENTIAL_LOCATIONS)


def is_secret_name(name: str) -> bool:
    """Tell whether a setting/key/variable name looks like it holds a secret value."""
    return bool(_SECRET_NAME_RE.search(name)) and not _NOT_SECRET_SUFFIX_RE.search(name)


def secret_file_kind(name: str, source: Path) -> str | None:
    """Return the kind of secret the file ``name`` is by the rules a table cannot say.

    Dotenv files (``.env``, ``.env.local``, ``prod.env``; not ``.env.example``), and
    ``*.pem``/``*.key`` files holding a private key: only those are opened (their first
    64 KiB), so that public certificates such as a CA bundle are kept.
    """
    if name == _DOTENV_SUFFIX or (
        name.startswith(".env.") and name[len(".env") :] not in _DOTENV_TEMPLATES
    ):
        return "dotenv"
    if name.endswith(_DOTENV_SUFFIX) and len(name) > len(_DOTENV_SUFFIX):
        return "dotenv"
    lower = name.lower()
    if lower.endswith(_KEY_SUFFIXES):
        try:
            with open(source, "rb") as f:
                head = f.read(65536)
        except OSError:
            return None
        if _PRIVATE_KEY_RE.search(head):
            return "private-key"
    return None


def has_url_credentials(text: str) -> bool:
    """Whether ``text`` holds a URL with a password in it (``postgresql://u:pw@host/db``)."""
    return bool(_URL_CREDENTIALS_RE.search(text))


def is_jupyter_config_name(name: str) -> bool:
    """Tell whether ``name`` is a Jupyter config file (``jupyter_server_config.py``…)."""
    return name.startswith("jupyter") and (
        name.endswith("_config.py") or name.endswith("_config.json")
    )


@dataclass(frozen=True)
class Redaction:
    """One redacted value: the setting it belonged to and its category."""

    setting: str
    kind: str


def _kind_of(name: str) -> str:
    lower = name.lower()
    for word, kind in (
        ("token", "token"),
        ("passw", "password"),
        ("passphrase", "password"),
        ("secret", "secret"),
        ("key", "api-key"),
        ("credential", "credential"),
    ):
        if word in lower:
            return kind
    return "secret"


def _target_name(node: ast.expr) -> str | None:
    """Dotted name of an assignment target (``c.ServerApp.token``), or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _target_name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = _target_name(node.value)
        return f"{base}[{node.slice.value!r}]"
    return None


def assignments(tree: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
    """Every assignment of a parsed Python file as ``(target, value)``, in ``ast.walk`` order.

    ``a = b = v`` gives two pairs (``a`` first); an annotation without a value gives none.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield target, node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
            yield node.target, node.value


class ByteSpans:
    """Where a parsed file's nodes stand in its bytes (ast gives lines and UTF-8 columns)."""

    def __init__(self, data: bytes) -> None:
        self._starts = [0]
        for line in data.splitlines(keepends=True):
            self._starts.append(self._starts[-1] + len(line))

    def of(self, node: ast.expr) -> tuple[int, int]:
        """The absolute byte offsets at which ``node``'s source starts and ends."""
        end_line = node.end_lineno or node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
        return self._starts[node.lineno - 1] + node.col_offset, self._starts[end_line - 1] + end_col


def _last_name(dotted: str) -> str:
    if dotted.endswith("]") and "[" in dotted:
        return dotted[dotted.rindex("[") + 1 : -1].strip("'\"")
    return dotted.rsplit(".", 1)[-1]


class _PySecretFinder(ast.NodeVisitor):
    """Collect the source spans of secret literals in a Python config file."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.expr, bool, Redaction]] = []

    def find(self, tree: ast.AST) -> None:
        """Collect the secret literals of ``tree``."""
        # settings first: a literal also under a secret dict key keeps its setting's name
        for target, value in assignments(tree):
            name = _target_name(target)
            if name and is_secret_name(_last_name(name)):
                self._secret_literals(value, name)
        self.visit(tree)

    def _secret_literals(self, value: ast.AST, setting: str) -> None:
        redaction = Redaction(setting, _kind_of(_last_name(setting)))
        for node in ast.walk(value):
            if isinstance(node, ast.JoinedStr):
                self._add(node, False, redaction)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                if node.value:
                    self._add(node, isinstance(node.value, bytes), redaction)

    def _add(self, node: ast.expr, is_bytes: bool, redaction: Redaction) -> None:
        if node.end_lineno is None or node.end_col_offset is None:
            return
        self.found.append((node, is_bytes, redaction))

    def visit_Dict(self, node: ast.Dict) -> None:  # noqa: D102, N802
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                if is_secret_name(key.value):
                    self._secret_literals(value, f"[{key.value!r}]")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: D102, N802
        for keyword in node.keywords:
            if keyword.arg and is_secret_name(keyword.arg):
                self._secret_literals(keyword.value, f"{keyword.arg}=")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:  # noqa: D102, N802
        if isinstance(node.value, str) and _URL_CREDENTIALS_RE.search(node.value):
            self._add(node, False, Redaction("url", "url-credentials"))


def _redact_python(data: bytes) -> tuple[bytes, list[Redaction]] | None:
    tree = ast.parse(data)
    finder = _PySecretFinder()
    finder.find(tree)
    if not finder.found:
        return data, []
    spans_in_data = ByteSpans(data)
    spans = [(*spans_in_data.of(node), is_bytes, why) for node, is_bytes, why in finder.found]
    spans.sort(key=lambda s: (s[0], -s[1]))
    kept: list[tuple[int, int, bool, Redaction]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            continue  # nested in a span already redacted (an f-string, a dict value)
        kept.append(span)
    out = bytearray(data)
    for start, end, is_bytes, _ in reversed(kept):
        literal = repr(REDACTION_MARKER.encode() if is_bytes else REDACTION_MARKER)
        out[start:end] = literal.encode()
    return bytes(out), [span[3] for span in kept]


def _redact_json_value(value: Any, setting: str, found: list[Redaction]) -> Any:
    """Replace every non-empty string under a secret key."""
    if isinstance(value, str):
        if value:
            found.append(Redaction(setting, _kind_of(_last_name(setting))))
            return REDACTION_MARKER
        return value
    if isinstance(value, list):
        return [_redact_json_value(item, setting, found) for item in value]
    if isinstance(value, dict):
        return {k: _redact_json_value(v, f"{setting}.{k}", found) for k, v in value.items()}
    return value


def _redact_json_tree(value: Any, path: str, found: list[Redaction]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            setting = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and is_secret_name(key):
                out[key] = _redact_json_value(item, setting, found)
            else:
                out[key] = _redact_json_tree(item, setting, found)
        return out
    if isinstance(value, list):
        return [_redact_json_tree(item, path, found) for item in value]
    if isinstance(value, str) and _URL_CREDENTIALS_RE.search(value):
        found.append(Redaction(path, "url-credentials"))
        return REDACTION_MARKER
    return value


def _redact_json(data: bytes) -> tuple[bytes, list[Redaction]]:
    document = json.loads(data)
    found: list[Redaction] = []
    redacted = _redact_json_tree(document, "", found)
    if not found:
        return data, []
    return (json.dumps(redacted, indent=2, ensure_ascii=False) + "\n").encode(), found


def redact_config(name: str, data: bytes) -> tuple[bytes, list[Redaction]] | None:
    """Redact the secret values of a config file's content.

    Returns the content to store (``data`` itself when nothing was found) and what was
    redacted; or None when the file cannot be parsed *and* looks like it holds a secret,
    in which case the caller must exclude it.
    """
    try:
        if name.endswith(".py"):
            return _redact_python(data)
        if name.endswith((".json", ".jupyterlab-settings", ".jupyterlab-workspace")):
            return _redact_json(data)
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
        pass
    text = data.decode("utf-8", errors="replace")
    if _JSON_SECRET_TEXT_RE.search(text) or _URL_CREDENTIALS_RE.search(text):
        return None
    if name.endswith(".py") and re.search(
        r"(token|passw(or)?d|secret)\w*\s*=\s*['\"][^'\"]+", text, re.IGNORECASE
    ):
        return None
    return data, []
