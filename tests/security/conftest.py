"""Security tests reuse the hub service's fixtures: a fake hub, the service, SQLite, PostgreSQL."""

from tests.hub.conftest import (  # noqa: F401 (fixtures)
    api,
    db_url,
    fake_hub,
    lab_stores,
    postgres_server,
    quotas,
    service,
)
