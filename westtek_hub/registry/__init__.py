"""The registry's rules: who sees and does what, and what each action records.

Plain functions over a SQLAlchemy session and a ``Caller`` (who is asking, from the hub's
user model), so every rule is testable without a server. Labs are JupyterHub groups:
``lab-<id>`` (or a name the configuration lists) makes a researcher of the lab, and the
group ``<group>-admins`` a lab admin; hub admins see everything. A denial raises
``Denied`` after nothing was changed; ``Registry.run`` then writes its audit entry.

The modules by job: ``errors`` (refusals), ``quotas`` (limits and storage), ``access``
(callers and lab isolation), ``views`` (wire forms), ``reports`` (what servers report),
``sharing``, ``succession``, and ``transaction`` (the ``Registry`` that runs them audited).
This package re-exports what the hub service uses.
"""

from westtek_hub.registry.access import (
    Caller,
    access_to,
    get_environment,
    list_environments,
    shared_with,
    visibility,
)
from westtek_hub.registry.errors import (
    Denied,
    Hidden,
    Invalid,
    NotFound,
    RegistryError,
    StoreUnavailable,
    TooLarge,
    refuse,
)
from westtek_hub.registry.quotas import (
    Quota,
    check_server_quota,
    check_snapshot_quota,
    lab_storage,
)
from westtek_hub.registry.reports import (
    event_key,
    list_events,
    record_container,
    record_event,
    record_snapshot,
    reporting_environment,
)
from westtek_hub.registry.sharing import (
    list_shares,
    record_copy,
    record_copy_removed,
    restorable_snapshot,
    revoke_share,
    share_json,
    share_snapshot,
)
from westtek_hub.registry.succession import (
    environment_history,
    memory_backlog,
    reassign,
    snapshot_origin,
    successor_lab,
    transfer_package,
)
from westtek_hub.registry.transaction import Registry
from westtek_hub.registry.views import environment_json

__all__ = [
    "Caller",
    "Denied",
    "Hidden",
    "Invalid",
    "NotFound",
    "Quota",
    "Registry",
    "RegistryError",
    "StoreUnavailable",
    "TooLarge",
    "access_to",
    "check_server_quota",
    "check_snapshot_quota",
    "environment_history",
    "environment_json",
    "event_key",
    "get_environment",
    "lab_storage",
    "list_environments",
    "list_events",
    "list_shares",
    "memory_backlog",
    "reassign",
    "record_container",
    "record_copy",
    "record_copy_removed",
    "record_event",
    "record_snapshot",
    "refuse",
    "reporting_environment",
    "restorable_snapshot",
    "revoke_share",
    "share_json",
    "share_snapshot",
    "shared_with",
    "snapshot_origin",
    "successor_lab",
    "transfer_package",
    "visibility",
]
