"""A successor's notebooks and checklist, from a snapshot's manifest and notebook analyses."""

from __future__ import annotations

from westtek_core.kb.succession import notebook_facts, onboarding_checklist, run_order

MANIFEST = {
    "id": "ab" * 32,
    "kernels": [{"name": "ir", "spec": {"display_name": "R 4.3"}}],
    "workspace": {"files": [{"path": "data/raw.csv", "kind": "file"},
                            {"path": "1_load.ipynb", "kind": "file"}]},
}  # fmt: skip
ANALYSES = [
    {"path": "3_model.ipynb", "kernel": "ir", "imports": [], "data_files": ["data/clean.rds"]},
    {"path": "1_load.ipynb", "kernel": "python3", "imports": ["pandas.io", "numpy"],
     "data_files": ["data/raw.csv"]},
]  # fmt: skip


def test_notebooks_run_in_natural_order():
    assert run_order(["10_plot.ipynb", "2_fit.ipynb", "1_load.ipynb", "b.ipynb", "a.ipynb"]) == [
        "1_load.ipynb", "2_fit.ipynb", "10_plot.ipynb", "a.ipynb",
        "b.ipynb",
    ]  # fmt: skip


def test_the_facts_say_what_each_notebook_imports_runs_on_and_lacks():
    facts = notebook_facts(MANIFEST, ANALYSES)
    assert facts["notebooks"] == [
        {"path": "1_load.ipynb", "kernel": "python3", "imports": ["numpy", "pandas"],
         "reads": ["data/raw.csv"], "missing_data": []},
        {"path": "3_model.ipynb", "kernel": "ir", "imports": [],
         "reads": ["data/clean.rds"], "missing_data": ["data/clean.rds"]},
    ]  # fmt: skip
    assert facts["kernels"] == [{"name": "ir", "display_name": "R 4.3"}]


def test_the_checklist_is_built_from_the_facts():
    steps = onboarding_checklist("bob", "ab" * 32, notebook_facts(MANIFEST, ANALYSES))
    assert steps[0].startswith("Take over snapshot abababababab of bob")
    assert "Use kernel ir (R 4.3), in the snapshot, for 3_model.ipynb." in steps
    assert "Install kernel python3: 1_load.ipynb run on it, and the snapshot lacks it." in steps
    assert (
        "Obtain data/clean.rds: 3_model.ipynb read it, and the snapshot does not hold it." in steps
    )
    assert any(s.endswith(": 1_load.ipynb, 3_model.ipynb.") for s in steps)
    # a snapshot without notebooks still says how to start and what to ask
    bare = onboarding_checklist("bob", "ab" * 32, {"notebooks": [], "kernels": []})
    assert len(bare) == 3 and "Knowledge Transfer agent" in bare[1]
