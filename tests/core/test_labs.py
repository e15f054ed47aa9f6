"""Which JupyterHub groups are labs: the one rule of the spawner and the hub service."""

from __future__ import annotations

from westtek_core.labs import LabPolicy

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
