"""Everything the researcher's REST API does, as one object with no web server in it.

The server extension keeps one ``EnvironmentService`` per Jupyter server: it opens the
store, runs long operations as background jobs, keeps a drift watcher running against the
environment's baseline, and fans each drift event out to listeners (WebSocket clients,
the event sinks). Every method is synchronous and safe to call from a worker thread;
listeners are called from the watcher's thread.

Split by job: ``state.py`` holds what every job shares (the store, the listeners, the
baseline signal), ``snapshots.py`` the store's operations and background jobs (snapshot,
verify, restore, rollback, take-over) and the store poll, ``drift.py`` the drift state,
events and watcher; ``service.py`` assembles :class:`EnvironmentService`. Import from here.
"""

from westtek_core.environment_service.service import EnvironmentService
from westtek_core.environment_service.state import USER_ERRORS, Listener, Message

__all__ = ["USER_ERRORS", "EnvironmentService", "Listener", "Message"]
