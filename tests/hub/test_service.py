import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from tests.conftest import free_port
from westtek_core import __version__
from westtek_hub.service import WestTekHubService


@pytest.fixture
async def service_url(monkeypatch, tmp_path):
    port = free_port()
    monkeypatch.setenv("WESTTEK_DATA_DIR", str(tmp_path))  # its registry, key and anchor
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/westtek/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{free_port()}/hub/api")
    service = WestTekHubService(data_dir=str(tmp_path))  # not the user's own registry
    server = service.make_app().listen(service.port, service.ip)
    yield f"http://127.0.0.1:{port}/services/westtek"
    server.stop()


async def test_status_answers_under_the_service_prefix(service_url):
    response = await AsyncHTTPClient().fetch(f"{service_url}/api/status")
    body = json.loads(response.body)
    assert body["version"] == __version__
    assert body["component"] == "hub-service"
    assert "hub-service" in body["capabilities"]


async def test_paths_outside_the_prefix_are_not_found(service_url):
    with pytest.raises(HTTPClientError) as error:
        await AsyncHTTPClient().fetch(service_url.replace("/services/westtek", "") + "/api/status")
    assert error.value.code == 404


def test_listens_where_jupyterhub_says(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10123")
    service = WestTekHubService()
    assert (service.ip, service.port) == ("127.0.0.1", 10123)


async def test_the_service_root_names_itself_for_the_hubs_services_menu(service_url):
    response = await AsyncHTTPClient().fetch(f"{service_url}/")
    assert b"West Tek hub service" in response.body
    assert b'href="api/status"' in response.body
