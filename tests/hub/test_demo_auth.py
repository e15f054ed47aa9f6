import pytest

from westtek_hub.demo_auth import WestTekDemoAuthenticator


@pytest.fixture
def authenticator():
    return WestTekDemoAuthenticator(
        allowed_users={"alice", "carol", "overseer"}, admin_users={"overseer"}
    )


@pytest.mark.parametrize("user", ["alice", "carol", "overseer"])
async def test_demo_users_log_in_with_the_demo_password(authenticator, user):
    auth = await authenticator.get_authenticated_user(
        None, {"username": user, "password": "westtek-demo"}
    )
    assert auth["name"] == user


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong"), ("alice", ""), ("mallory", "westtek-demo"), ("", "westtek-demo")],
)
async def test_anyone_else_is_refused(authenticator, user, password):
    assert (
        await authenticator.get_authenticated_user(None, {"username": user, "password": password})
        is None
    )


def test_it_is_not_jupyterhubs_default_authenticator():
    from jupyterhub.app import JupyterHub

    assert JupyterHub().authenticator_class is not WestTekDemoAuthenticator
