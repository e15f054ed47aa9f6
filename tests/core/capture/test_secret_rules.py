import ast
import json

from westtek_core.capture import REDACTION_MARKER
from westtek_core.capture.secret_rules import is_secret_name, redact_config

PY_CONFIG = """\
c = get_config()  # noqa
c.ServerApp.token = 'abc123secret'
c.ServerApp.password = "argon2:$argon2id$v=19$m=10240,t=10,p=8$salt$hash"
c.IdentityProvider.token = ''  # empty: auth disabled, kept as is
c.PasswordIdentityProvider.hashed_password = f"sha1:{'deadbeef'}"
c.ServerApp.port = 8888
c.ServerApp.password_required = True
c.ServerApp.cookie_secret_file = '/srv/cookie'
c.Spawner.environment = {"GITHUB_TOKEN": "ghp_x", "LANG": "C.UTF-8"}
c.JupyterHub.services = [dict(name="svc", api_token=b"t0k")]
c.ServerApp.notebook_dir = 'é/notebooks'; c.Repo.remote = 'https://user:pw@example.org/r.git'
"""


def test_python_config_values_are_redacted_in_place():
    content, found = redact_config("jupyter_server_config.py", PY_CONFIG.encode())
    text = content.decode()
    ast.parse(text)  # still valid Python
    for secret in ("abc123secret", "argon2", "deadbeef", "ghp_x", "t0k", "user:pw"):
        assert secret not in text
    for kept in ("token = ''", "port = 8888", "= True", "'/srv/cookie'", "C.UTF-8", "é/notebooks"):
        assert kept in text
    assert f"c.ServerApp.token = {REDACTION_MARKER!r}" in text
    assert f"api_token={REDACTION_MARKER.encode()!r}" in text
    assert len(text.splitlines()) == len(PY_CONFIG.splitlines())
    assert [(r.setting, r.kind) for r in found] == [
        ("c.ServerApp.token", "token"),
        ("c.ServerApp.password", "password"),
        ("c.PasswordIdentityProvider.hashed_password", "password"),
        ("['GITHUB_TOKEN']", "token"),
        ("api_token=", "token"),
        ("url", "url-credentials"),
    ]


def test_json_config_values_are_redacted():
    data = {
        "ServerApp": {"token": "jsontoken", "port": 9999, "password_required": True},
        "IdentityProvider": {"password": "pw", "token": ""},
        "Spawner": {"environment": {"AWS_SECRET_ACCESS_KEY": "k", "HOME": "/home/a"}},
    }
    content, found = redact_config("jupyter_server_config.json", json.dumps(data).encode())
    redacted = json.loads(content)
    assert redacted["ServerApp"] == {
        "token": REDACTION_MARKER,
        "port": 9999,
        "password_required": True,
    }
    assert redacted["IdentityProvider"] == {"password": REDACTION_MARKER, "token": ""}
    assert redacted["Spawner"]["environment"]["AWS_SECRET_ACCESS_KEY"] == REDACTION_MARKER
    assert redacted["Spawner"]["environment"]["HOME"] == "/home/a"
    assert sorted(r.setting for r in found) == [
        "IdentityProvider.password",
        "ServerApp.token",
        "Spawner.environment.AWS_SECRET_ACCESS_KEY",
    ]


def test_files_without_secrets_are_returned_unchanged():
    data = b'{"ServerApp": {"jpserver_extensions": {"x": true}}}'
    assert redact_config("x.json", data) == (data, [])
    commented = b'{\n  // a comment makes it JSON5\n  "theme": "JupyterLab Dark"\n}\n'
    assert redact_config("themes.jupyterlab-settings", commented) == (commented, [])


def test_unparsable_files_that_look_secret_cannot_be_redacted():
    assert redact_config("jupyter_server_config.py", b"c.ServerApp.token = 'x\n") is None
    assert redact_config("a.jupyterlab-settings", b'{// c\n "apiKey": "sk-1"}') is None


def test_secret_names():
    for name in ("token", "hashed_password", "GITHUB_TOKEN", "client_secret", "api_key", "passwd"):
        assert is_secret_name(name), name
    not_secret = ("port", "token_url", "cookie_secret_file", "password_required", "auth_class")
    for name in not_secret:
        assert not is_secret_name(name), name
