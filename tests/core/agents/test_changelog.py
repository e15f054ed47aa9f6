"""GetPackageChangelog: the public API diff of two real installed versions, offline."""

from __future__ import annotations

from tests.core.agents.conftest import API_V1, API_V2, snapshot
from tests.core.conftest import pip_install
from westtek_core.agents import api_diff
from westtek_core.agents.tools import Citation, ToolContext, call_tool


def _source(files: dict[str, str], version: str) -> api_diff.PackageSource:
    import textwrap

    paths = [f"westtek_api_pkg/{name}" for name in files]
    data = {f"westtek_api_pkg/{n}": textwrap.dedent(t).encode() for n, t in files.items()}
    return api_diff.collect_source("westtek-api-pkg", version, "test", paths, data.get)


def test_public_api_follows_reexports_all_and_members():
    api = api_diff.public_api(_source(API_V1, "1.0.0"))
    assert api["westtek_api_pkg.load"].signature == "(path, sep=',', header=True)"
    assert api["westtek_api_pkg.load"].definition == "westtek_api_pkg.io:load"
    assert api["westtek_api_pkg.io.load"].definition == "westtek_api_pkg.io:load"
    assert api["westtek_api_pkg.Model"].signature == "(order, damping=0.5)"
    assert api["westtek_api_pkg.Model.fit"].signature == "(x)"
    assert api["westtek_api_pkg.Model.params"].kind == "property"
    assert "westtek_api_pkg.io._private" not in api


def test_the_diff_names_removals_moves_signature_changes_and_deprecations():
    changes = {
        c.name: c
        for c in api_diff.diff_api(
            api_diff.public_api(_source(API_V1, "1.0.0")),
            api_diff.public_api(_source(API_V2, "2.0.0")),
        )
    }
    removed = changes["westtek_api_pkg.stats.ttest"]
    assert removed.change == "removed" and removed.breaking
    assert removed.details == ["now at `westtek_api_pkg.testing.ttest`"]
    load = changes["westtek_api_pkg.load"]
    assert load.change == "signature_changed" and load.breaking
    assert "westtek_api_pkg.io.load" in load.also  # one object, reported once
    assert "`sep` is now keyword-only (was positional)" in load.details
    assert "new optional parameter `encoding='utf-8'`" in load.details
    fit = changes["westtek_api_pkg.Model.fit"]
    assert fit.details == ["new required parameter `y`"] and fit.breaking
    assert changes["westtek_api_pkg.old_helper"].change == "deprecated"
    assert changes["westtek_api_pkg.new_reader"].change == "added"
    assert "westtek_api_pkg.Model.predict" not in changes


def test_changelog_of_two_snapshotted_versions_names_the_notebook_cells_that_break(lab):
    pip_install(lab["python"], lab["api_wheels"], "westtek-api-pkg==2.0.0")
    after = snapshot(lab, "api 2")
    result = call_tool(
        ToolContext(lab["service"]),
        "GetPackageChangelog",
        {"package_name": "westtek-api-pkg", "old_version": "1.0.0", "new_version": "2.0.0"},
    )
    data = result.data
    assert data["compared"] == [f"snapshot:{lab['baseline']}", f"snapshot:{after}"]
    by_name = {c["name"]: c for c in data["api_changes"]}
    # imported in cell 1, called (through the imported name) in cell 4
    assert by_name["westtek_api_pkg.stats.ttest"]["used_by"] == [
        {
            "notebook": "figures.ipynb",
            "cell": 1,
            "name": "westtek_api_pkg.stats.ttest",
            "called": False,
        },
        {
            "notebook": "figures.ipynb",
            "cell": 4,
            "name": "westtek_api_pkg.stats.ttest",
            "called": True,
        },
    ]
    assert {u["cell"] for u in by_name["westtek_api_pkg.load"]["used_by"]} == {2}
    assert by_name["westtek_api_pkg.Model.fit"]["used_by"][0]["called"] is True
    assert by_name["westtek_api_pkg.old_helper"]["used_by"] == []
    assert data["added"] == ["westtek_api_pkg.new_reader"]
    assert "Requires-Python: >=3.8 → >=3.10" in data["metadata_changes"]
    assert "requirement added: pip>=20" in data["metadata_changes"]
    cites = result.citations
    assert Citation("figures.ipynb", "cell 3") in cites  # m.fit(table)
    assert any(c.source == f"snapshot:{after}" and c.locator.startswith("line ") for c in cites)
    assert result.facts[0].text.startswith("westtek-api-pkg 1.0.0 → 2.0.0: 3 breaking")


def test_changelog_of_a_live_drift_reads_the_new_version_from_the_environment(lab):
    # Given a baseline with 1.0.0 and 2.0.0 installed since, not snapshotted
    pip_install(lab["python"], lab["api_wheels"], "westtek-api-pkg==2.0.0")
    # When the changelog is asked without versions
    result = call_tool(
        ToolContext(lab["service"]), "GetPackageChangelog", {"package_name": "westtek_api_pkg"}
    )
    # Then the versions come from the drift and the new source from the live install
    assert (result.data["old_version"], result.data["new_version"]) == ("1.0.0", "2.0.0")
    assert result.data["compared"] == [f"snapshot:{lab['baseline']}", "live"]
    assert any(c["name"] == "westtek_api_pkg.Model.fit" for c in result.data["api_changes"])
