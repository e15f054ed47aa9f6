"""The `westtek snapshot …` commands, through the CLI's entry point."""

from __future__ import annotations

import json
import threading

import pytest

from westtek_core.cli import main
from westtek_core.store import Repository


@pytest.fixture
def cli(capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_create_list_show_verify_restore_export(cli, research_env, tmp_path):
    store = str(tmp_path / "store")
    root = str(research_env["workspace"])
    python = str(research_env["python"])
    code, out, _ = cli(
        "snapshot",
        "create",
        "--python",
        python,
        "--root",
        root,
        "--store",
        store,
        "--note",
        "first",
        "--label",
        "experiment=e42",
        "--json",
    )
    assert code == 0
    created = json.loads(out)
    snapshot_id = created["id"]
    assert len(snapshot_id) == 64 and created["files"] > 100

    code, out, _ = cli("snapshot", "list", "--store", store, "--json")
    (row,) = json.loads(out)["snapshots"]
    assert (row["id"], row["notes"], row["labels"]) == (snapshot_id, "first", {"experiment": "e42"})

    code, out, _ = cli("snapshot", "show", snapshot_id[:8], "--store", store, "--json")
    assert json.loads(out)["id"] == snapshot_id

    code, out, _ = cli("snapshot", "verify", "--all", "--store", store, "--json")
    assert code == 0 and json.loads(out)["ok"]

    code, out, _ = cli("snapshot", "diff", snapshot_id, snapshot_id, "--store", store, "--json")
    assert json.loads(out) == {"status": "STABLE", "baseline": snapshot_id, "changes": []}

    target = tmp_path / "restored"
    code, out, _ = cli(
        "snapshot", "restore", snapshot_id, "--to", str(target), "--store", store, "--json"
    )
    assert code == 0 and json.loads(out)["ok"]
    assert (target / "RESTORE.json").exists()

    code, out, _ = cli(
        "snapshot", "export", snapshot_id, "--format", "requirements", "--store", store
    )
    assert "westtek_probe_pkg==1.0.0" in out.replace("-", "_")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshot", "show", "deadbeef"], "no snapshot 'deadbeef'"),
        (["snapshot", "show", "ab"], "too short"),
        (["snapshot", "create", "--root", "/nonexistent/dir"], "is not a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, tmp_path, argv, message):
    Repository.open(str(tmp_path / "store"), create=True)
    code, out, err = cli(*argv, "--store", str(tmp_path / "store"))
    assert code == 1
    assert err.count("\n") == 1 and message in err and err.startswith("westtek: error: ")


def test_a_missing_store_is_not_created_by_reading_commands(cli, tmp_path):
    code, _, err = cli("snapshot", "list", "--store", str(tmp_path / "nothing-here"))
    assert code == 1 and "no West Tek store" in err
    assert not (tmp_path / "nothing-here").exists()


def test_bad_label_is_a_usage_error(cli, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli("snapshot", "create", "--label", "novalue", "--store", str(tmp_path))
    assert exit_info.value.code == 2


def test_snapshot_to_s3_and_back(cli, research_env, s3_bucket, tmp_path):
    # Given an S3 store (a moto server on loopback), a snapshot goes in and comes back out.
    store = f"s3://{s3_bucket}/labs/vault-13"
    code, out, err = cli(
        "snapshot",
        "create",
        "--python",
        str(research_env["python"]),
        "--root",
        str(research_env["workspace"]),
        "--store",
        store,
        "--json",
    )
    assert code == 0, err
    snapshot_id = json.loads(out)["id"]
    code, out, _ = cli("snapshot", "verify", snapshot_id, "--store", store, "--json")
    assert code == 0 and json.loads(out)["ok"]
    target = tmp_path / "from-s3"
    code, out, err = cli(
        "snapshot",
        "restore",
        snapshot_id,
        "--to",
        str(target),
        "--store",
        store,
        "--no-validate",
        "--json",
    )
    assert code == 0, err
    assert (target / "workspace" / "analysis.ipynb").read_bytes() == (
        research_env["workspace"] / "analysis.ipynb"
    ).read_bytes()


@pytest.mark.usefixtures("thawing_held")
def test_restore_of_archived_packs_says_how_long_then_waits_for_them_with_wait(
    cli, s3_bucket, tmp_path
):
    from tests.core.store.archived import (
        FILES,
        MORE_FILES,
        archive_packs,
        set_restore_state,
        write_snapshot,
    )
    from westtek_core.store import S3Backend

    # Given: a lab store more than a year old, its packs moved to Deep Archive
    backend = S3Backend(bucket=s3_bucket, prefix="labs/vault-111")
    with Repository.open(backend, cache_dir=tmp_path / "cache") as repo:
        snapshot_id = write_snapshot(repo, FILES, MORE_FILES)
    packs = archive_packs(backend)
    store = f"s3://{s3_bucket}/labs/vault-111"
    code, out, err = cli("snapshot", "list", "--store", store, "--json")
    assert code == 0, err
    assert [row["id"] for row in json.loads(out)["snapshots"]] == [snapshot_id]

    # When: restored, it asks for the packs back and says how long, exiting 75
    target = tmp_path / "restored"
    restore = ("snapshot", "restore", snapshot_id[:10], "--to", str(target), "--store", store,
               "--no-validate")  # fmt: skip
    code, out, err = cli(*restore)
    assert (code, err) == (75, "")
    assert out == (
        f"waiting for archive, ready in about 12 hours: 2 packs of snapshot {snapshot_id[:12]}"
        " coming back from archive storage, Standard retrieval\n"
    )
    assert not target.exists()

    def thaw(state: str) -> None:
        for key in packs:
            set_restore_state(backend.bucket, backend._key(key), state)

    # When: verified while S3 thaws them, it says so without asking again
    thaw("IN_PROGRESS")
    code, out, _ = cli("snapshot", "verify", snapshot_id, "--store", store, "--json")
    assert code == 75
    assert json.loads(out)["waiting"] | {"message": ""} == {
        "waiting": 2, "requested": 0, "tier": "Standard", "ready_in_hours": 12, "message": ""
    }  # fmt: skip

    # When: with --wait, it keeps checking while they thaw and finishes once they are back
    back = threading.Timer(0.5, thaw, ("RESTORED",))
    back.start()
    try:
        code, out, err = cli(*restore, "--wait", "--poll", "0.1")
    finally:
        back.join()
    assert code == 0, err
    waits = err.splitlines()
    assert waits and all(
        w.startswith("westtek: waiting for archive, ready in about") for w in waits
    )
    restored = target / "workspace"
    files = {str(p.relative_to(restored)): p.read_bytes() for p in restored.rglob("*.*")}
    assert files == FILES | MORE_FILES
    backend.close()
