"""Starting a researcher's server through the hub, with a shared snapshot brought over first.

Used by the launch request (:mod:`westtek_hub.servers`) and by launches that waited for
archive storage (:mod:`westtek_hub.archived_launches`), which the service finishes by
itself hours later, when nobody's request is open.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tornado.httpclient import HTTPClientError

from westtek_core.store import ArchiveWait, StoreError
from westtek_hub import audit
from westtek_hub.api_base import HubClient, audited_hub_request
from westtek_hub.registry import Caller, Registry, StoreUnavailable, record_copy, refuse
from westtek_hub.stores import LabStores


class LaunchRefused(Exception):
    """The hub did not start the server: an HTTP status and the one line to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def start_user_server(
    hub: HubClient,
    registry: Registry,
    caller: Caller,
    environment_id: str,
    lab: str,
    options: dict[str, Any],
    name: str,
) -> dict[str, Any]:
    """Ask the hub to start ``caller``'s server ``name`` with ``options`` (audited).

    Raises :class:`LaunchRefused` when the hub does not answer or refuses.
    """
    path = f"users/{quote(caller.name)}/servers/{quote(name)}"
    try:
        await audited_hub_request(
            hub, registry, caller, "server.launch", environment_id, lab, options,
            "POST", path, {**options},
        )  # fmt: skip
    except OSError as e:
        raise LaunchRefused(502, f"the hub did not answer: {e}") from None
    except HTTPClientError as e:
        if e.code == 400 and e.response is not None and b"already" in e.response.body:
            raise LaunchRefused(
                409,
                f"{caller.name}'s server is already running: open it from the hub's home "
                "page, or stop it first to launch another",
            ) from None
        raise LaunchRefused(502, f"the hub refused to start the server ({e.code})") from None
    return {"user": caller.name, "server_name": name, "user_options": options}


def copy_shared_snapshot(
    stores: LabStores,
    registry: Registry,
    caller: Caller,
    snapshot_id: str,
    from_lab: str,
    to_lab: str,
) -> str:
    """Copy a shared snapshot into ``to_lab``'s store for ``caller``; the copy's id there.

    The copy is noted on the snapshot's restore shares and audited. Raises
    :class:`~westtek_core.store.ArchiveWait` when packs it needs are in archive storage
    (their restore requested, nothing copied), and ``StoreUnavailable`` (audited) when the
    copy fails. Blocking: run it in a worker thread.
    """
    try:
        copied = stores.copy(snapshot_id, from_lab, to_lab)
    except ArchiveWait:
        raise
    except (StoreError, OSError) as e:
        failed = StoreUnavailable(
            f"snapshot {snapshot_id[:12]} could not be copied to lab {to_lab}'s store: {e}", to_lab
        )
        # audited as refused, and raised again
        registry.run(caller, "snapshot.copy", snapshot_id, lambda _: refuse(failed))
    detail = {"from_lab": from_lab, "to_lab": to_lab, "copy": copied}

    def record(session: Any) -> None:
        record_copy(session, snapshot_id, to_lab, copied)
        audit.append(session, caller.name, "snapshot.copy", snapshot_id, lab_id=to_lab,
                     detail=detail)  # fmt: skip

    registry.run(caller, "snapshot.copy", snapshot_id, record)
    return copied
