"""The demo authenticator: fixed users, one shared password. For the local demo only."""

from __future__ import annotations

import hmac
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Unicode


class WestTekDemoAuthenticator(Authenticator):
    """DEMO ONLY: the users in ``allowed_users``/``admin_users`` log in with one password.

    It exists so ``make demo`` works on a machine with no identity provider. Production
    hubs authenticate through Cognito/OAuth; nothing selects this class by default.
    """

    demo_password = Unicode(
        "westtek-demo",
        config=True,
        help="The password every demo user logs in with. Demo only: it is shared by all.",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log.warning(
            "WestTekDemoAuthenticator is active: every demo user shares one password. "
            "Never use it on a hub reachable by others."
        )

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        """Accept a known demo user with the demo password; ``check_allowed`` vets the name."""
        password = data.get("password", "")
        if not hmac.compare_digest(password.encode(), self.demo_password.encode()):
            return None
        return data.get("username", "").strip() or None
