"""Which JupyterHub groups are labs, and whose an environment id is: rules the suite shares."""

from __future__ import annotations

from westtek_core.labs import LabPolicy, environment_id_of, in_namespace_of, namespace_owner

POLICY = LabPolicy(prefix="lab-", named=frozenset({"vault-13", "vault-101"}))


def test_a_group_is_a_lab_by_prefix_or_by_name_and_admins_by_suffix():
    assert POLICY.lab_of("lab-genomics") == ("genomics", False)
    assert POLICY.lab_of("lab-genomics-admins") == ("genomics", True)
    assert POLICY.lab_of("vault-13") == ("vault-13", False)
    assert POLICY.lab_of("vault-13-admins") == ("vault-13", True)
    for not_a_lab in ("lab-", "staff", "vault-1", "westtek-admins"):
        assert POLICY.lab_of(not_a_lab) is None


def test_a_users_labs_and_the_labs_they_administer():
    labs, admin_labs = POLICY.labs_of(["vault-13", "lab-x-admins", "staff"])
    assert (labs, admin_labs) == (frozenset({"vault-13", "x"}), frozenset({"x"}))


def test_a_users_server_runs_in_their_first_lab_by_group_name():
    # an admins group counts as the lab it administers; groups that are no lab never do
    assert POLICY.user_lab(["staff", "vault-13", "vault-101"]) == "vault-101"
    assert POLICY.user_lab(["vault-13-admins"]) == "vault-13"
    assert POLICY.user_lab(["staff"]) == ""


def test_the_older_pattern_still_names_labs():
    policy = LabPolicy(prefix="", pattern=r"vault-\d+")
    assert policy.user_lab(["staff", "vault-7"]) == "vault-7"
    assert policy.lab_of("vault-7-admins") == ("vault-7", True)
    assert policy.lab_of("vault-x") is None


def test_an_environment_id_is_in_its_owners_namespace_and_no_one_elses():
    assert environment_id_of("bob") == "bob"
    assert environment_id_of("bob", "gpu") == "bob:gpu"
    for env_id in ("bob", "bob:gpu"):
        assert in_namespace_of("bob", env_id) and namespace_owner(env_id) == "bob"
        assert not in_namespace_of("carol", env_id)
    # a longer name that starts with bob's is someone else's
    assert not in_namespace_of("bob", "bobby") and not in_namespace_of("bob", "bob-env")
