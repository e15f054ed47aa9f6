"""The ``Registry``: runs its operations in a transaction, auditing every refusal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from westtek_core.labs import LabPolicy
from westtek_core.snapshot.retention import RetentionPolicy
from westtek_hub import audit
from westtek_hub.registry.access import Caller
from westtek_hub.registry.errors import Hidden, RateLimited, RegistryError, refuse
from westtek_hub.registry.quotas import Quota, RateLimiter

T = TypeVar("T")


@dataclass
class Registry:
    """Run registry operations in a transaction; a refusal still writes its audit entry."""

    sessions: sessionmaker[Session]
    policy: LabPolicy = field(default_factory=LabPolicy)
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    default_quota: Quota = field(default_factory=Quota)

    rate: RateLimiter = field(default_factory=RateLimiter)
    retention: RetentionPolicy = field(
        default_factory=lambda: RetentionPolicy(
            keep_last=10, keep_daily=7, keep_weekly=8, keep_monthly=12
        )
    )

    def quota(self, lab: str) -> Quota:
        """A lab's quota (the default when it has none of its own)."""
        return self.quotas.get(lab, self.default_quota)

    def check_rate(self, caller: Caller) -> None:
        """Refuse (429, audited) a caller over their labs' API rate; hub admins are not limited."""
        if caller.admin:
            return
        limits = [self.quota(lab).requests_per_minute for lab in caller.labs] or [
            self.default_quota.requests_per_minute
        ]
        limit = 0 if 0 in limits else max(limits)
        if not self.rate.allow(caller.name, limit):
            error = RateLimited(
                f"{caller.name} is over the API rate of {limit} requests a minute: slow down"
            )
            self.run(caller, "api.rate", "", lambda _: refuse(error))

    def run(self, caller: Caller, action: str, target: str, work: Callable[[Session], T]) -> T:
        """``work`` in one transaction; a ``RegistryError`` rolls it back and is audited."""
        with self.sessions() as session:
            try:
                result = work(session)
                session.commit()
                return result
            except RegistryError as e:
                session.rollback()
                refused = "denied" if e.status == 403 or isinstance(e, Hidden) else "refused"
                audit.append(
                    session,
                    caller.name,
                    action,
                    target,
                    lab_id=e.lab_id,
                    outcome=refused,
                    detail={"reason": str(e), "status": e.status},
                )
                session.commit()
                raise
