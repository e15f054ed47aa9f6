"""The parts of an environment a rollback, or a restore when a server starts, puts back.

Never the workspace: the notebooks and data are the researcher's own. A module of its own
(importing nothing) so the CLI, the spawner and the server's models name them without
loading the rollback machinery.
"""

from __future__ import annotations

from typing import Literal, get_args

RestoreArea = Literal["packages", "kernels", "config"]
"""One part of an environment that can be put back from a snapshot."""

AREAS: tuple[RestoreArea, ...] = get_args(RestoreArea)
"""Every restore area, in the order a rollback takes them."""
