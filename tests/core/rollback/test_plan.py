"""The rollback plan as a value: a target manifest and a live description in, steps out."""

from __future__ import annotations

import json
import os

import pytest

from westtek_core.rollback.plan import (
    RollbackError,
    RollbackPlan,
    RollbackStep,
    distribution_entries,
    plan_rollback,
)

SITE = "lib/python3.11/site-packages"


def _dist(name: str, version: str, *, script: bool = False) -> dict:
    info = f"{name}-{version}.dist-info"
    files = [f"{name}/__init__.py", f"{name}/__pycache__/__init__.cpython-311.pyc"]
    files += [f"{info}/METADATA", f"{info}/RECORD"]
    if script:
        files.append(f"../../../bin/{name}-tool")
    return {"name": name, "version": version, "files": files}


def _tree_files(*dists: dict) -> list[dict]:
    entries = []
    for dist in dists:
        for path in dist["files"]:
            relative = os.path.normpath(f"{SITE}/{path}")
            if "__pycache__" not in relative:
                entries.append(
                    {"path": relative, "kind": "file", "mode": 0o644, "size": 1, "mtime_ns": 1}
                )
    return sorted(entries, key=lambda e: e["path"])


def _kernel(name: str, root: str, mtime: int = 1) -> dict:
    entry = {"path": "kernel.json", "kind": "file", "mode": 0o644, "size": 9, "mtime_ns": mtime}
    return {"name": name, "resource_dir": f"{root}/{name}", "files": [entry]}


def _config_file(path: str, mtime: int = 1) -> dict:
    return {"path": path, "kind": "file", "mode": 0o644, "size": 5, "mtime_ns": mtime}


@pytest.fixture
def target_and_live():
    """A target manifest and a live description that differ in every way a plan handles."""
    same, old_b, only_target = _dist("a", "1.0"), _dist("b", "2.0", script=True), _dist("c", "1.0")
    target = {
        "id": "f" * 64,
        "interpreters": [
            {
                "path": "/env/bin/python",
                "executable": "/env/bin/python",
                "prefix": "/env",
                "paths": {"purelib": f"/env/{SITE}", "platlib": f"/env/{SITE}"},
                "packages": [same, old_b, only_target],
                "prefix_tree": {"root": "/env", "files": _tree_files(same, old_b, only_target)},
            }
        ],
        "kernels": [_kernel("research", "/jd/kernels"), _kernel("same", "/jd/kernels")],
        "jupyter": {
            "config": [
                {
                    "dir": "/jc",
                    "role": "config",
                    "files": [
                        {"path": "lab", "kind": "dir", "mode": 0o755, "size": 0, "mtime_ns": 1},
                        _config_file("jupyter_server_config.py"),
                        _config_file("jupyter_lab_config.py"),
                    ],
                }
            ]
        },
    }
    site = f"/env/{SITE}"
    live = {
        "pythons": None,
        "self_prefix": "/elsewhere",
        "interpreters": [
            {
                "path": "/env/bin/python",
                "prefix": "/env",
                "packages": [
                    {**_dist("a", "1.0"), "location": site},
                    {**_dist("b", "3.0"), "location": site},
                    {**_dist("d", "0.1"), "location": site},
                ],
            }
        ],
        "kernels": [
            _kernel("research", "/jd/kernels", mtime=2),
            _kernel("same", "/jd/kernels"),
            _kernel("added", "/jd/kernels"),
        ],
        "config": [
            {
                "dir": "/jc",
                "files": [
                    _config_file("jupyter_server_config.py", mtime=2),
                    _config_file("jupyter_lab_config.py"),
                    _config_file("jupyter_notebook_config.py"),
                ],
            }
        ],
        "kernel_dirs": ["/jd/kernels"],
        "config_dirs": ["/jc"],
    }
    return target, live


def test_a_snapshots_lab_layout_is_never_rolled_back(target_and_live):
    # Given a snapshot made when JupyterLab's workspaces were captured as config,
    target, live = target_and_live
    layout = _config_file("lab/workspaces/default-37a8.jupyterlab-workspace")
    target["jupyter"]["config"][0]["files"].append(layout)
    # the rollback plans nothing for them: a layout is not configuration.
    names = [step.name for step in plan_rollback(target, live, ["config"]).steps]
    assert names == ["jupyter_notebook_config.py", "jupyter_server_config.py"]


def test_a_plan_lists_every_difference_removals_first(target_and_live):
    target, live = target_and_live
    plan = plan_rollback(target, live)
    packages = {"area": "packages", "where": "/env/bin/python", "interpreter": 0}
    assert plan.to_json() == {
        "target": "f" * 64,
        "only": ["packages", "kernels", "config"],
        "steps": [
            {**packages, "action": "remove", "name": "d", "before": "0.1", "after": None},
            {**packages, "action": "replace", "name": "b", "before": "3.0", "after": "2.0"},
            {**packages, "action": "install", "name": "c", "before": None, "after": "1.0"},
            {
                "area": "kernels",
                "action": "remove",
                "name": "added",
                "where": "/jd/kernels/added",
                "interpreter": None,
                "before": None,
                "after": None,
            },
            {
                "area": "kernels",
                "action": "replace",
                "name": "research",
                "where": "/jd/kernels/research",
                "interpreter": None,
                "before": None,
                "after": None,
            },
            {
                "area": "config",
                "action": "remove",
                "name": "jupyter_notebook_config.py",
                "where": "/jc",
                "interpreter": None,
                "before": None,
                "after": None,
            },
            {
                "area": "config",
                "action": "replace",
                "name": "jupyter_server_config.py",
                "where": "/jc",
                "interpreter": None,
                "before": None,
                "after": None,
            },
        ],
        "unchanged": {"packages": 1, "kernels": 1, "config": 1},
        "notes": [],
    }


def test_only_limits_the_plan_to_its_areas(target_and_live):
    target, live = target_and_live
    plan = plan_rollback(target, live, only=["kernels"])
    assert {s.area for s in plan.steps} == {"kernels"} and plan.unchanged == {"kernels": 1}
    with pytest.raises(RollbackError, match="choose from packages, kernels, config"):
        plan_rollback(target, live, only=["workspace"])


def test_record_paths_map_into_the_prefix():
    dist = _dist("b", "2.0", script=True)
    interp = {
        "prefix": "/env",
        "paths": {"purelib": f"/env/{SITE}"},
        "prefix_tree": {"files": _tree_files(dist)},
    }
    entries, missing = distribution_entries(interp, dist)
    assert [e["path"] for e in entries] == [
        "bin/b-tool",
        f"{SITE}/b-2.0.dist-info/METADATA",
        f"{SITE}/b-2.0.dist-info/RECORD",
        f"{SITE}/b/__init__.py",
    ]
    assert missing == []  # bytecode caches are never stored and never missed


@pytest.mark.parametrize(
    "bad_path", ["../../../../etc/cron.d/evil", "/etc/cron.d/evil", "../../../../../env2/x"]
)
def test_a_record_path_leaving_the_prefix_is_refused(target_and_live, bad_path):
    target, live = target_and_live
    target["interpreters"][0]["packages"][2]["files"].append(bad_path)
    with pytest.raises(RollbackError, match="unsafe path in snapshot: c lists"):
        plan_rollback(target, live)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("kernel-dir", "/etc/research", "not a kernelspec of a Jupyter kernels directory"),
        ("kernel-dir", "/jd/kernels/../../etc/research", "not a kernelspec"),
        ("kernel-name", "..", "unsafe kernel name"),
        ("kernel-file", "../../../etc/passwd", "unsafe path in manifest"),
        ("config-dir", "/etc", "is not a Jupyter config directory here"),
        ("config-file", "/etc/passwd", "unsafe path in manifest"),
        ("config-file", "lab/../../x", "unsafe path in manifest"),
    ],
)
def test_kernels_and_config_must_stay_in_their_dirs(target_and_live, where, value, message):
    target, live = target_and_live
    kernel = target["kernels"][0]
    config = target["jupyter"]["config"][0]
    if where == "kernel-dir":
        kernel["resource_dir"] = value
    elif where == "kernel-name":
        kernel["name"] = value
    elif where == "kernel-file":
        kernel["files"][0]["path"] = value
    elif where == "config-dir":
        config["dir"] = value
    else:
        config["files"][1]["path"] = value
    with pytest.raises(RollbackError, match=message):
        plan_rollback(target, live)


def test_what_cannot_be_done_safely_is_left_and_noted(target_and_live):
    target, live = target_and_live
    live["interpreters"][0]["packages"][2]["location"] = "/root/.local/lib/site-packages"
    target["interpreters"][0]["packages"][2]["files"] = []  # c: no RECORD in the snapshot
    plan = plan_rollback(target, live, only=["packages"])
    assert [s.name for s in plan.steps] == ["b"]
    assert plan.notes == [
        "c 1.0 of /env/bin/python cannot be restored: its files are not in the snapshot "
        "(installed outside the prefix?)",
        "d 0.1 of /env/bin/python is installed outside its prefix "
        "(/root/.local/lib/site-packages): left as it is",
    ]


def test_an_unknown_interpreter_is_refused(target_and_live):
    target, live = target_and_live
    live["pythons"] = ["/other/bin/python"]
    with pytest.raises(RollbackError, match="interpreter /other/bin/python is not in snapshot"):
        plan_rollback(target, live)


def test_a_step_survives_the_journal_round_trip():
    step = RollbackStep("packages", "replace", "b", "/env/bin/python", 0, "3.0", "2.0")
    assert RollbackStep.from_json(json.loads(json.dumps(step.to_json()))) == step
    assert step.describe() == "replace b 3.0 → 2.0 (/env/bin/python)"


def test_a_gone_interpreter_comes_back_from_the_snapshots_copy_of_its_prefix(target_and_live):
    # Given the interpreter's whole environment deleted since the snapshot
    target, live = target_and_live
    live["interpreters"] = []
    # the plan restores the prefix in one step instead of package by package
    plan = plan_rollback(target, live, only=["packages"])
    assert [s.to_json() for s in plan.steps] == [
        {
            "area": "packages",
            "action": "restore-prefix",
            "name": "/env/bin/python",
            "where": "/env/bin/python",
            "interpreter": 0,
            "before": None,
            "after": None,
        }
    ]
    assert plan.steps[0].describe() == "restore the environment of /env/bin/python"
    # a system interpreter (no copy of its files) or a prefix outside it is refused
    del target["interpreters"][0]["prefix_tree"]
    with pytest.raises(RollbackError, match="gone and snapshot holds no copy of its files"):
        plan_rollback(target, live)
    target["interpreters"][0]["prefix_tree"] = {"files": []}
    target["interpreters"][0]["prefix"] = "/"
    with pytest.raises(RollbackError, match="unsafe prefix in snapshot for /env/bin/python"):
        plan_rollback(target, live)


def test_an_interpreter_running_from_another_prefix_is_refused(target_and_live):
    target, live = target_and_live
    live["interpreters"][0]["prefix"] = "/env2"
    with pytest.raises(RollbackError, match="now runs from /env2, not /env as in the snapshot"):
        plan_rollback(target, live)


def test_the_suite_running_the_rollback_is_left_as_it_is(target_and_live):
    # Given the suite itself upgraded in the environment being rolled back
    target, live = target_and_live
    target["interpreters"][0]["packages"].append(_dist("westtek", "1.0"))
    live["interpreters"][0]["packages"].append({**_dist("westtek", "2.0"), "location": "/env"})
    live["self_prefix"] = "/env"
    plan = plan_rollback(target, live, only=["packages"])
    assert "westtek" not in [s.name for s in plan.steps]
    assert plan.notes == ["westtek is running this rollback: left as it is in /env/bin/python"]


def test_kernels_of_packages_stay_and_shadowed_ones_are_written_back(target_and_live):
    # Given a kernel a package ships (outside the kernels dirs) and a kernelspec of the
    # snapshot shadowed now by one of the same name in another dir of the search path
    target, live = target_and_live
    live["kernels"] = [
        _kernel("same", "/jd/kernels"),
        _kernel("research", "/other/kernels", mtime=2),
        _kernel("ir", "/env/share/jupyter/kernels"),
    ]
    plan = plan_rollback(target, live, only=["kernels"])
    assert [(s.action, s.name, s.where) for s in plan.steps] == [
        ("install", "research", "/jd/kernels/research")
    ]
    assert plan.notes == [
        "kernel ir (/env/share/jupyter/kernels/ir) belongs to a package: left as it is"
    ]


def test_the_fingerprint_names_what_the_plan_does_and_nothing_else(target_and_live):
    target, live = target_and_live
    plan = plan_rollback(target, live)
    again = plan_rollback(target, live)
    # the same plan twice is the same fingerprint; notes and counts are not what it does
    assert again.fingerprint == plan.fingerprint
    again.notes.append("a note")
    again.unchanged["config"] = 9
    assert again.fingerprint == plan.fingerprint
    # one step more, fewer areas, or another target is another plan
    more = RollbackPlan(
        plan.target, plan.only, [*plan.steps, RollbackStep("config", "remove", "x", "/jc")]
    )
    fewer = plan_rollback(target, live, only=["kernels", "config"])
    other = RollbackPlan("e" * 64, plan.only, list(plan.steps))
    assert len({plan.fingerprint, more.fingerprint, fewer.fingerprint, other.fingerprint}) == 4
    # the preview is the plan, each step with its line, and the fingerprint to confirm
    preview = plan.to_preview()
    assert preview == plan.to_json() | {
        "steps": [s.to_json() | {"description": s.describe()} for s in plan.steps],
        "fingerprint": plan.fingerprint,
    }
    assert [row["description"] for row in preview["steps"]] == [
        "remove d 0.1 (/env/bin/python)",
        "replace b 3.0 → 2.0 (/env/bin/python)",
        "install c 1.0 (/env/bin/python)",
        "remove kernel added",
        "replace kernel research",
        "remove config /jc/jupyter_notebook_config.py",
        "replace config /jc/jupyter_server_config.py",
    ]
