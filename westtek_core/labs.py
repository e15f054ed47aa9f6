"""Which JupyterHub groups are labs, and whose an environment id is: rules the suite shares.

A lab is a JupyterHub group: one named ``<prefix><id>`` (``lab-<id>`` by default) or one
listed by name; ``<group>-admins`` makes its members the lab's admins. A user's lab (the
one their server runs in) is the first of their labs by group name. The members of
``westtek-admins`` are the hub's admins (all labs): a group, not JupyterHub's admin flag,
because JupyterHub's admin role also reaches every user's server (see westtek_hub.roles).
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

ADMINS_SUFFIX = "-admins"
# The hub admins' group; infra/lib/identity-stack.ts makes the Cognito group of this name.
HUB_ADMINS_GROUP = "westtek-admins"


@dataclass(frozen=True)
class LabPolicy:
    """Which JupyterHub groups are labs.

    ``pattern`` (a regular expression matched against the whole group name) is the older
    way to name labs, kept for configurations that still set it.
    """

    prefix: str = "lab-"
    named: frozenset[str] = frozenset()
    pattern: str = ""
    hub_admins_group: str = HUB_ADMINS_GROUP

    def is_hub_admin(self, groups: Iterable[str]) -> bool:
        """Whether a user in ``groups`` administers the hub (every lab)."""
        return self.hub_admins_group in groups

    def lab_of(self, group: str) -> tuple[str, bool] | None:
        """``(lab id, is the lab's admins group)`` for a lab group, else None."""
        admins = group.endswith(ADMINS_SUFFIX)
        base = group.removesuffix(ADMINS_SUFFIX) if admins else group
        if base in self.named or (self.pattern and re.fullmatch(self.pattern, base)):
            return base, admins
        if self.prefix and base.startswith(self.prefix) and len(base) > len(self.prefix):
            return base[len(self.prefix) :], admins
        return None

    def labs_of(self, groups: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
        """The labs of a user in ``groups``, and those of them the user administers."""
        labs, admin_labs = set(), set()
        for group in groups:
            found = self.lab_of(group)
            if found:
                labs.add(found[0])
                if found[1]:
                    admin_labs.add(found[0])
        return frozenset(labs), frozenset(admin_labs)

    def user_lab(self, groups: Iterable[str]) -> str:
        """The lab a user's server runs in: the first of their labs by group name, or ''."""
        for group in sorted(groups):
            found = self.lab_of(group)
            if found:
                return found[0]
        return ""


LAB_ID_KEY = "lab_id"
"""A lab's key in KMS encryption contexts and AWS tags (infra/lib/names.ts ``TAG_KEYS.labId``):
the snapshot key's policy lets a lab's role use only data keys under its own lab's context."""


def server_lab_id() -> str:
    """The lab of the server this process runs in: ``$WESTTEK_LAB_ID`` (set by the spawner)."""
    return os.environ.get("WESTTEK_LAB_ID", "")


def lab_encryption_context(lab_id: str) -> dict[str, str]:
    """The KMS encryption context of a lab's store data key (empty outside any lab)."""
    return {LAB_ID_KEY: lab_id} if lab_id else {}


SERVER_SEPARATOR = ":"
"""Between an environment id's owner and its named server (JupyterHub usernames may hold it
only when the authenticator allows; ``Authenticator.username_pattern`` can forbid it)."""


def environment_id_of(owner: str, server_name: str = "") -> str:
    """A server's environment id: its owner's name, plus ``:<server name>`` for a named server.

    Ids are namespaced by owner so the hub service can tell whose an id is before it
    exists: only the owner's server (or a hub admin) may register one. The spawner, the
    server's own default and the hub service all use this one rule.
    """
    return f"{owner}{SERVER_SEPARATOR}{server_name}" if server_name else owner


def default_environment_id() -> str:
    """The environment a snapshot belongs to when none is given.

    ``$WESTTEK_ENVIRONMENT_ID`` (the spawner's), else under JupyterHub the server's id in its
    user's namespace (see ``labs.environment_id_of``), else user@host.
    """
    user = os.environ.get("JUPYTERHUB_USER")
    return os.environ.get("WESTTEK_ENVIRONMENT_ID") or (
        environment_id_of(user, os.environ.get("JUPYTERHUB_SERVER_NAME", ""))
        if user
        else f"{getpass.getuser()}@{socket.gethostname()}"
    )


def in_namespace_of(owner: str, environment_id: str) -> bool:
    """Whether ``environment_id`` is ``owner``'s: their default server's or a named one's."""
    return environment_id == owner or environment_id.startswith(owner + SERVER_SEPARATOR)


def namespace_owner(environment_id: str) -> str:
    """Whose namespace ``environment_id`` is in (the part before the server's name)."""
    return environment_id.split(SERVER_SEPARATOR, 1)[0]
