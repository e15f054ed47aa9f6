import json

import pytest
from tornado.httpclient import HTTPClientError

from westtek_core import __version__


async def test_status_answers_version_and_capabilities(jp_fetch):
    response = await jp_fetch("westtek", "api", "status")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["version"] == __version__
    assert body["component"] == "server-extension"
    assert "server-extension" in body["capabilities"]
    assert "lab-extension" not in body["capabilities"]  # none in pytest-jupyter's fresh paths


async def test_status_reports_the_lab_extension_where_jupyterlab_finds_it(
    jp_fetch, jp_env_jupyter_path
):
    lab = jp_env_jupyter_path / "labextensions" / "westtek-labextension"
    lab.mkdir(parents=True)
    (lab / "package.json").write_text('{"name": "westtek-labextension"}')
    body = json.loads((await jp_fetch("westtek", "api", "status")).body)
    assert "lab-extension" in body["capabilities"]


async def test_status_requires_authentication(jp_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("westtek", "api", "status", headers={"Authorization": ""})
    assert error.value.code == 403


def test_extension_points_name_the_extension_app():
    import westtek_server_ext

    (point,) = westtek_server_ext._jupyter_server_extension_points()
    assert point["module"] == "westtek_server_ext"
    (lab,) = westtek_server_ext._jupyter_labextension_paths()
    assert lab["dest"] == "westtek-labextension"
