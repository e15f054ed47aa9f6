"""Which environment id a researcher's server reports as, after a hand-over too.

A server's id is its owner's name, plus ``:<server name>`` for a named server
(``labs.environment_id_of``). Once that environment is handed to a successor, the id keeps
naming it (its snapshots, citations and history say so), so the former owner's next
server would report as an environment that is no longer theirs: refused, and its
snapshots mixed into the successor's in the lab's store. Their servers take the next
generation of the id instead (``bob:@2``, ``bob:gpu@2``), asked of the hub service by the
spawner at each start.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from westtek_core.labs import environment_id_of
from westtek_hub.models import Environment, Transfer

# within the characters the spawner allows in an id, and unusual in a server's name
GENERATION_MARK = "@"


def own_environment_id(session: Session, researcher: str, server_name: str = "") -> str:
    """The first generation of the researcher's id for this server that nobody else holds."""
    generation = 1
    while True:
        suffix = f"{GENERATION_MARK}{generation}" if generation > 1 else ""
        candidate = environment_id_of(researcher, f"{server_name}{suffix}")
        held = session.get(Environment, candidate)
        if held is None or held.researcher_id == researcher:
            return candidate
        generation += 1


def handed_over_from(session: Session, researcher: str) -> list[str]:
    """The environments handed over from the researcher that they no longer hold."""
    query = (
        select(Transfer.environment_id)
        .join(Environment, Environment.id == Transfer.environment_id)
        .where(Transfer.from_researcher == researcher, Environment.researcher_id != researcher)
        .distinct()
    )
    return sorted(session.scalars(query))
