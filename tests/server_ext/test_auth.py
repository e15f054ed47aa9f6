"""Every route of the researcher API refuses requests without Jupyter server credentials."""

import pytest
from tornado.httpclient import HTTPClientError

from westtek_server_ext.handlers import handler_routes
from westtek_server_ext.openapi import path_template

ROUTES = [
    (verb.upper(), path_template(pattern).removeprefix("/westtek/api/"))
    for pattern, handler in handler_routes()
    for verb in handler.operations
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_requires_authentication(jp_fetch, method, path):
    path = path.format(
        snapshot_id="abcd1234",
        other_id="abcd5678",
        job_id="0123456789abcdef",
        conversation_id="0" * 32,
    )
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch(
            "westtek",
            "api",
            *path.split("/"),
            method=method,
            body="{}" if method in ("POST", "PUT") else None,
            headers={"Authorization": ""},
        )
    # a WebSocket route answers a plain GET 400 (no upgrade) unless it is refused first
    assert raised.value.code == 403
