"""Which WESTTEK_* and AWS_* environment variables the production code reads, by process.

:func:`environment_reads` scans the source (``ast``, not a hand list), so a variable read
anywhere is seen: every string literal that is such a name counts as a read, wherever it
is (``os.environ.get(NAME)``, a helper's argument, a module constant, a traitlets
``@default``), except where it is written — a key of a dict display (an environment
handed on) or the target of ``env[NAME] = ...``. A literal that is only a prefix
(``"AWS_ENDPOINT_URL_"`` in an f-string) names variables built at run time, which no
check can follow: it must be in :data:`OPTIONAL_PREFIXES`.

The contract test (tests/e2e/test_aws_contract.py) checks every read against what the
deployment sets for the process that runs the code, or :data:`OPTIONAL`.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

from tests.e2e.conftest import REPO

NAME = re.compile(r"(WESTTEK|AWS)_[A-Z0-9_]*[A-Z0-9]")
PREFIX = re.compile(r"(WESTTEK|AWS)_([A-Z0-9]+_)*")

HUB, HUB_SERVICE, NOTEBOOK = "hub", "hub service", "notebook server"
ANY = "process"  # westtek_core runs in all three: "set for no process"

# Where each production module runs on the stack (None: not on the stack); the first
# matching prefix wins.
PROCESS_OF_SOURCE: list[tuple[str, str | None]] = [
    ("hub_config/aws.py", HUB),
    ("hub_config/", None),  # the local and Docker demos' hub configurations
    ("westtek_spawner/prestart.py", NOTEBOOK),  # the notebook task's pre-start restore
    ("westtek_spawner/backends/docker.py", None),  # the stack's hub runs the ecs backend
    ("westtek_spawner/backends/local.py", None),
    ("westtek_spawner/", HUB),
    ("westtek_hub/", HUB_SERVICE),
    ("westtek_server_ext/", NOTEBOOK),
    ("images/notebook/", NOTEBOOK),
    ("images/", None),  # `make images`, on a build machine
    ("westtek_core/", ANY),
]

# Set in every ECS task by ECS itself ("Amazon ECS environment variables", ECS developer
# guide): the hub's task and each notebook task.
ECS_TASK_ENVIRONMENT = frozenset(
    {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
     "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"}
)  # fmt: skip

# Variables the code reads that nothing on the stack sets, by design: each has a default
# that is right on AWS, and says why.
OPTIONAL: dict[str, str] = {
    "WESTTEK_DATA_DIR": "default: the user's XDG data directory (the EFS home for servers)",
    "WESTTEK_CACHE_DIR": "default: the user's XDG cache directory",
    "WESTTEK_LOG_DIR": "set by the local backend, which keeps a server's log in a file;"
    " on ECS the log goes to CloudWatch",
    "WESTTEK_KEY_FILE": "the CLI's key file for a store encrypted with a local key; "
    "AWS stores wrap their data key with KMS",
    "WESTTEK_S3_RESTORE_TIER": "retrieval tier for archived packs; default Standard",
    "WESTTEK_S3_RESTORE_DAYS": "days a thawed pack stays readable; default 7",
    "WESTTEK_METRICS_TOKEN": "unset: only hub admins may scrape the service's metrics",
    "WESTTEK_AUDIT_KEY_FILE": "fallback when WESTTEK_AUDIT_KEY (hub_config sets it) is unset",
    "WESTTEK_AUDIT_RETENTION_DAYS": "the stack sets it only where data goes with the stacks"
    " (retainData false: dev); elsewhere the service keeps its seven-year lock",
    "WESTTEK_HUB_BIND_URL": "default: every interface on 8081, in the hub's own task",
    "WESTTEK_SERVICE_URL": "default: the hub service on loopback, started by the hub",
    "WESTTEK_DB_SSLMODE": "default 'require' (RDS); a local database may disable TLS",
    "WESTTEK_RESTORE_ON_START": "default on: servers restore their latest snapshot",
    "WESTTEK_PROFILES": "default: hub_config/aws.py's small, medium and large",
    "WESTTEK_LAB_SERVER_QUOTAS": "default: no per-lab limit on servers",
    "WESTTEK_IDLE_TIMEOUT_SECONDS": "default: idle servers stopped after an hour",
    "WESTTEK_NOTEBOOK_IMAGE": "an image given outright instead of the stack's template task"
    " definition (WESTTEK_NOTEBOOK_TASK_DEFINITION_ARN, which the stack sets)",
    "AWS_ENDPOINT_URL": "S3-compatible servers and tests; on AWS boto3 finds the endpoints",
    "AWS_ENDPOINT_URL_S3": "as AWS_ENDPOINT_URL, for S3 alone",
}
OPTIONAL_PREFIXES: dict[str, str] = {
    "AWS_": "every AWS_* variable at once, never one by name: hub_config/aws.py hands the"
    " hub's on to its service, westtek_core.aws keys its client cache on them",
    "AWS_ENDPOINT_URL_": "boto3's per-service endpoint variables, as AWS_ENDPOINT_URL",
}


def process_of(path: str) -> str | None:
    """The process ``path`` (relative to the repository) runs in; None if not deployed."""
    for prefix, process in PROCESS_OF_SOURCE:
        if path.startswith(prefix):
            return process
    raise AssertionError(f"{path}: say where it runs in PROCESS_OF_SOURCE")


def _written(tree: ast.AST) -> set[int]:
    """ids of the string nodes that name a variable being set, not read."""
    written = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            written |= {id(key) for key in node.keys if key is not None}
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            written.add(id(node.slice))
    return written


def names_read(source: str) -> tuple[set[str], set[str]]:
    """The variable names ``source`` reads, and the name prefixes it spells."""
    tree = ast.parse(source)
    written = _written(tree)
    names, prefixes = set(), set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if NAME.fullmatch(node.value) and id(node) not in written:
            names.add(node.value)
        elif PREFIX.fullmatch(node.value):
            prefixes.add(node.value)
    return names, prefixes


@functools.cache
def environment_reads() -> tuple[dict[str, dict[str, set[str]]], dict[str, set[str]]]:
    """{process: {name: files reading it}}, and {prefix: files spelling it}, of the code
    deployed on the stack."""
    reads: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    prefixes: dict[str, set[str]] = defaultdict(set)
    sources = ("westtek_core", "westtek_server_ext", "westtek_spawner", "westtek_hub",
               "hub_config", "images")  # fmt: skip
    for path in sorted(p for root in sources for p in (REPO / root).rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        process = process_of(relative)
        if process is None:
            continue
        names, spelled = names_read(Path(path).read_text())
        for name in names:
            reads[process][name].add(relative)
        for prefix in spelled:
            prefixes[prefix].add(relative)
    return reads, prefixes


def unset_reads(setters: dict[str, set[str]]) -> list[str]:
    """What is wrong between the code's reads and ``setters`` ({process: names the
    deployment sets for it}): each read nothing sets and :data:`OPTIONAL` does not excuse,
    each name built at run time from a prefix not in :data:`OPTIONAL_PREFIXES`, and each
    excuse that no longer applies (the name is set, or read nowhere)."""
    reads, prefixes = environment_reads()
    setters = setters | {ANY: set().union(*setters.values())}
    problems = [
        f"{name} (read in {', '.join(sorted(files))}) is set for no {process}: set it in the"
        " stack or the hub's spawner, or say in OPTIONAL why it may stay unset"
        for process, names in reads.items()
        for name, files in sorted(names.items())
        if name not in setters[process] and name not in OPTIONAL
    ]
    problems += [
        f"{', '.join(sorted(files))} builds variable names from {prefix!r}: spell them out,"
        " or say in OPTIONAL_PREFIXES why they may stay unset"
        for prefix, files in sorted(prefixes.items())
        if prefix not in OPTIONAL_PREFIXES
    ]
    read_anywhere = {name for names in reads.values() for name in names}
    problems += [
        f"OPTIONAL excuses {name}, which is {'set' if name in setters[ANY] else 'read nowhere'}"
        for name in sorted(OPTIONAL)
        if name in setters[ANY] or name not in read_anywhere
    ]
    return problems


def unread(process: str, given: set[str]) -> set[str]:
    """The WESTTEK_* names of ``given`` that no code running in ``process`` reads."""
    reads, _ = environment_reads()
    read = set(reads[process]) | set(reads[ANY])
    return {name for name in given if name.startswith("WESTTEK_")} - read
