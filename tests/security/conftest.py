"""Fixtures of the security tests: the hub service against its fake hub (tests/hub), and the
loopback moto server of the store tests (tests/core/store) for the AWS parts."""

from tests.core.store.conftest import moto_endpoint, s3_endpoint  # noqa: F401
from tests.hub.conftest import (  # noqa: F401
    api,
    db_url,
    fake_hub,
    lab_stores,
    postgres_server,
    quotas,
    service,
)
