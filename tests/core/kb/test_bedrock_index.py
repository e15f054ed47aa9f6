"""The Bedrock Knowledge Base index: S3 on a loopback moto server, Bedrock on a loopback fake."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import nbformat
import pytest
from traitlets import TraitError
from traitlets.config import Config

from tests.conftest import free_port
from tests.core.kb.fake_bedrock import FakeBedrock
from tests.core.kb.test_lab_memory import notebook
from tests.core.store.conftest import moto_endpoint  # noqa: F401 (a fixture)
from tests.loopback import allow_only_loopback, use_dummy_aws
from westtek_core.kb import HybridSqliteIndex, KnowledgeBase, KnowledgeIndexBackend
from westtek_core.kb.bedrock import BedrockKnowledgeIndex, KnowledgeIndexError
from westtek_core.kb.chunking import chunk_document
from westtek_core.kb.documents import notebook_document

NOTEBOOKS = ("kernel_density.ipynb", "robust_models_0.ipynb")
# each lab's knowledge base and data source, as infra makes them: one per lab
LABS = {"vault-13": ("KB13000000", "DS13000000"), "vault-101": ("KB10100000", "DS10100000")}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing but loopback is dialled; dummy credentials, no profile, no IMDS."""
    allow_only_loopback(monkeypatch, "bedrock index test")
    use_dummy_aws(monkeypatch, tmp_path)
    for name in (
        "WESTTEK_KB_BACKEND",
        "WESTTEK_LAB_ID",
        "WESTTEK_STORE",
        "WESTTEK_KNOWLEDGE_BASE_IDS",
        "WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS",
    ):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def s3(moto_endpoint: str) -> Any:  # noqa: F811
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def bedrock(s3: Any) -> Iterator[FakeBedrock]:
    """A fresh bucket and a fake knowledge base per lab, each over its lab's prefix of it."""
    bucket = f"westtek-snapshots-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    fake = FakeBedrock(s3, bucket)
    for lab, (knowledge_base_id, data_source_id) in LABS.items():
        fake.add_knowledge_base(knowledge_base_id, data_source_id, f"labs/{lab}/kb/")
    fake.start()
    yield fake
    fake.stop()


def bedrock_config(fake: FakeBedrock, s3_endpoint: str, **overrides: Any) -> Config:
    """The traitlets configuration that selects these fake knowledge bases."""
    traits = {
        "backend": "bedrock",
        "knowledge_base_ids": {lab: ids[0] for lab, ids in LABS.items()},
        "data_source_ids": {lab: ids[1] for lab, ids in LABS.items()},
        "bucket": fake.bucket,
        "s3_endpoint_url": s3_endpoint,
        "agent_endpoint_url": fake.url,
        "runtime_endpoint_url": fake.url,
    }
    return Config({"KnowledgeIndexBackend": traits | overrides})


@pytest.fixture
def open_index(bedrock: FakeBedrock, moto_endpoint: str, tmp_path: Path) -> Iterator[Any]:  # noqa: F811
    """Open a lab's Bedrock index the way the server does: through the configurable."""
    opened: list[BedrockKnowledgeIndex] = []

    def open_(lab: str, environment: str = "", **overrides: Any) -> BedrockKnowledgeIndex:
        config = bedrock_config(bedrock, moto_endpoint, **overrides)
        backend = KnowledgeIndexBackend(config=config, lab_id=lab)
        index = backend.open_index(tmp_path / "unused", environment)
        assert isinstance(index, BedrockKnowledgeIndex)
        opened.append(index)
        return index

    yield open_
    for index in opened:
        index.close()


@pytest.fixture
def workspace(example_notebooks: Path, tmp_path: Path) -> Path:
    """A workspace with two real notebooks."""
    root = tmp_path / "workspace"
    (root / "notebooks").mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(example_notebooks / name, root / "notebooks" / name)
    return root


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_ingested_notebooks_are_found_with_a_citation(open_index, bedrock, s3, workspace):
    # Given two real notebooks ingested into lab vault-13's share of the knowledge base
    kb = KnowledgeBase(workspace / "unused.sqlite", index=open_index("vault-13"))
    report = kb.ingest_workspace(workspace)
    assert not report.failed
    assert sorted(report.ingested) == [f"notebooks/{n}" for n in NOTEBOOKS]

    # Then each parent is an object under the lab's kb/ prefix with its metadata sidecar
    stored = keys(s3, bedrock.bucket)
    assert stored and all(k.startswith("labs/vault-13/kb/notebook/notebooks%2F") for k in stored)
    sidecar = next(k for k in stored if k.endswith("/0.md.metadata.json"))
    attributes = json.loads(s3.get_object(Bucket=bedrock.bucket, Key=sidecar)["Body"].read())
    assert set(attributes["metadataAttributes"]) == {
        "lab",
        "source",
        "kind",
        "locator",
        "fingerprint",
    }
    assert attributes["metadataAttributes"]["lab"] == "vault-13"
    assert bedrock.jobs == 2  # one ingestion job per changed document, on the lab's own source
    jobs = [body for name, body in bedrock.requests if name == "StartIngestionJob"]
    assert len(jobs) == 2 and len(bedrock.passages["KB13000000"]) == len(stored) // 2

    # When the lab searches, it finds the right notebook and the cell its passage begins at
    (best, *_) = kb.search("kernel density estimation of a univariate sample", k=3)
    assert best.source == "notebooks/kernel_density.ipynb" and best.kind == "notebook"
    assert best.locator.startswith("cell ")
    notebook = nbformat.read(workspace / best.source, as_version=4)
    cell = notebook.cells[int(best.locator.split()[1])]
    first_line = next(line for line in cell.source.splitlines() if line.strip())
    assert first_line.strip() in best.text
    robust = kb.search("robust linear models Huber's T norm", k=3)
    assert robust[0].source == "notebooks/robust_models_0.ipynb"
    assert len({(r.source, r.text) for r in robust}) == len(robust)  # one per parent


def test_an_unchanged_notebook_is_skipped_and_a_vanished_one_forgotten(
    open_index, bedrock, s3, workspace
):
    kb = KnowledgeBase(workspace / "unused.sqlite", index=open_index("vault-13"))
    kb.ingest_workspace(workspace)
    jobs = bedrock.jobs

    # Re-ingesting the same notebooks writes nothing and starts no job (fingerprints match)
    again = kb.ingest_workspace(workspace)
    assert again.ingested == [] and again.unchanged == 2 and bedrock.jobs == jobs
    assert sorted(kb.index.sources("notebook")) == [f"notebooks/{n}" for n in NOTEBOOKS]

    # A notebook deleted from the workspace is removed from S3 and from the results
    (workspace / "notebooks" / "kernel_density.ipynb").unlink()
    report = kb.ingest_workspace(workspace)
    assert report.removed == ["notebooks/kernel_density.ipynb"]
    assert kb.index.sources("notebook") == ["notebooks/robust_models_0.ipynb"]
    assert not any("kernel_density" in k for k in keys(s3, bedrock.bucket))
    results = kb.search("kernel density estimation of a univariate sample", k=5)
    assert all(r.source != "notebooks/kernel_density.ipynb" for r in results)


def test_a_changed_notebook_replaces_its_old_version(open_index, bedrock, s3, workspace):
    kb = KnowledgeBase(workspace / "unused.sqlite", index=open_index("vault-13"))
    kb.ingest_workspace(workspace)
    path = workspace / "notebooks" / "robust_models_0.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("Quokka regression footnote."))
    nbformat.write(notebook, path)

    report = kb.ingest_workspace(workspace)

    assert report.ingested == ["notebooks/robust_models_0.ipynb"]
    versions = {k.split("/")[5] for k in keys(s3, bedrock.bucket) if "robust" in k}
    assert len(versions) == 1  # the old version's objects are gone
    assert kb.search("quokka footnote", k=1)[0].source == "notebooks/robust_models_0.ipynb"


def test_one_lab_never_retrieves_another_labs_material(open_index, bedrock, s3, workspace):
    # Given lab A's kernel-density notebook in its knowledge base, lab B's robust-models one
    lab_b_root = workspace.parent / "lab-b"
    (lab_b_root / "notebooks").mkdir(parents=True)
    robust = "notebooks/robust_models_0.ipynb"
    (workspace / robust).rename(lab_b_root / robust)
    lab_a = KnowledgeBase(workspace / "a.sqlite", index=open_index("vault-13"))
    lab_a.ingest_workspace(workspace)
    lab_b = KnowledgeBase(lab_b_root / "b.sqlite", index=open_index("vault-101"))
    lab_b.ingest_workspace(lab_b_root)

    # Then each lab's material is under its own prefix and in its own knowledge base only
    stored = keys(s3, bedrock.bucket)
    assert {k.split("/kb/")[0] for k in stored} == {"labs/vault-13", "labs/vault-101"}
    assert all("kernel_density" in k for k in stored if k.startswith("labs/vault-13/"))
    assert {p["metadata"]["lab"] for p in bedrock.passages["KB13000000"]} == {"vault-13"}
    assert {p["metadata"]["lab"] for p in bedrock.passages["KB10100000"]} == {"vault-101"}

    # When each lab asks a question that matches the other's notebook, it gets only its own
    assert lab_a.search("kernel density estimation", k=1)[0].source.endswith("kernel_density.ipynb")
    found = lab_b.search("kernel density estimation of a univariate sample", k=5)
    assert {r.source for r in found} <= {robust}
    assert robust not in {r.source for r in lab_a.search("robust linear models Huber's T", k=5)}

    # And even pointed at lab A's knowledge base by mistake, lab B's filter returns nothing
    misdirected = open_index("vault-101", knowledge_base_ids={"vault-101": "KB13000000"})
    assert misdirected.search("kernel density estimation of a univariate sample", k=5) == []
    assert misdirected.search("kernel density", k=5, kinds={"notebook", "experiment"}) == []
    retrieves = [body for name, body in bedrock.requests if name == "Retrieve"][-2:]
    filters = [
        r["retrievalConfiguration"]["vectorSearchConfiguration"]["filter"] for r in retrieves
    ]
    assert filters == [
        {"equals": {"key": "lab", "value": "vault-101"}},
        {
            "andAll": [
                {"equals": {"key": "lab", "value": "vault-101"}},
                {"in": {"key": "kind", "value": ["experiment", "notebook"]}},
            ]
        },
    ]


def test_search_modes_map_to_bedrock_search_types(open_index, bedrock):
    index = open_index("vault-13")
    index.search("anything", k=2, mode="embedding")
    index.search("anything", k=2, mode="hybrid")
    sent = [b["retrievalConfiguration"]["vectorSearchConfiguration"] for _, b in bedrock.requests]
    assert [s["overrideSearchType"] for s in sent] == ["SEMANTIC", "HYBRID"]
    assert all(s["numberOfResults"] >= 2 for s in sent)

    with pytest.raises(ValueError, match="no keyword-only \\(bm25\\) search") as error:
        index.search("anything", mode="bm25")
    assert "\n" not in str(error.value)


def test_a_failed_upload_keeps_the_old_version(open_index, bedrock, s3, workspace):
    kb = KnowledgeBase(workspace / "unused.sqlite", index=open_index("vault-13"))
    kb.ingest_workspace(workspace)
    before = keys(s3, bedrock.bucket)
    source = "notebooks/robust_models_0.ipynb"
    fingerprint = kb.index.fingerprint(source, "notebook")
    parents = chunk_document(notebook_document(workspace / source, source))

    # S3 refuses the second upload of the new version (through botocore's own event hooks)
    puts = []

    def refuse_second_put(**_: Any) -> Any:
        puts.append(1)
        if len(puts) == 2:  # the first parent's sidecar is written, the parent is not
            response = type("Response", (), {"status_code": 403})()
            error = {"Code": "AccessDenied", "Message": "Access Denied"}
            return response, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None

    s3_client = kb.index._client("s3")  # test seam: inject one failure
    s3_client.meta.events.register("before-call.s3.PutObject", refuse_second_put)

    with pytest.raises(KnowledgeIndexError) as error:
        kb.index.replace(source, "notebook", "new-fingerprint", parents)

    message = str(error.value)
    assert "\n" not in message and "put_object" in message and "AccessDenied" in message
    assert keys(s3, bedrock.bucket) == before  # nothing of the new version, all of the old
    assert kb.index.fingerprint(source, "notebook") == fingerprint


def test_aws_errors_are_one_line_naming_the_operation(open_index, bedrock):
    unknown = open_index("vault-13", knowledge_base_ids={"vault-13": "KBNOTTHERE"})
    with pytest.raises(KnowledgeIndexError) as error:
        unknown.search("kernel density")
    assert str(error.value).startswith("Bedrock knowledge base: retrieve failed: ")
    assert "ResourceNotFoundException" in str(error.value) and "\n" not in str(error.value)

    unreachable = open_index("vault-13", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(KnowledgeIndexError) as error:
        unreachable.sources("notebook")
    assert "list_objects_v2 failed" in str(error.value) and "\n" not in str(error.value)


def test_the_backend_is_sqlite_by_default_and_bedrock_when_configured(
    bedrock,
    moto_endpoint,  # noqa: F811
    tmp_path,
):
    path = tmp_path / "vault-13.sqlite"
    default = KnowledgeIndexBackend()
    assert default.backend == "sqlite" and not default.is_built(path)
    index = default.open_index(path)
    assert isinstance(index, HybridSqliteIndex) and index.path == path
    index.close()

    configured = KnowledgeIndexBackend(config=bedrock_config(bedrock, moto_endpoint))
    assert configured.is_built(path)
    config = bedrock_config(bedrock, moto_endpoint)
    kb = KnowledgeIndexBackend(config=config, lab_id="vault-13").open_knowledge_base(path)
    assert isinstance(kb.index, BedrockKnowledgeIndex) and kb.index.lab == "vault-13"
    kb.close()

    with pytest.raises(ValueError, match="needs a lab id"):
        configured.open_index(path)
    with pytest.raises(TraitError):
        KnowledgeIndexBackend(backend="opensearch")


def test_the_deployed_environment_configures_the_labs_knowledge_base(monkeypatch, tmp_path):
    # Given what a notebook server on the deployed stack gets from the spawner
    monkeypatch.setenv("WESTTEK_KB_BACKEND", "bedrock")
    monkeypatch.setenv("WESTTEK_LAB_ID", "vault-13")
    monkeypatch.setenv("WESTTEK_STORE", "s3://westtek-prod-snapshots-1-eu/labs/vault-13/")
    monkeypatch.setenv("WESTTEK_KNOWLEDGE_BASE_IDS", '{"vault-13": "KB13000000"}')
    monkeypatch.setenv("WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS", '{"vault-13": "DS13000000"}')

    # When it opens its index with no configuration at all
    backend = KnowledgeIndexBackend()
    index = backend.open_index(tmp_path / "unused.sqlite")

    # Then it is the lab's knowledge base, over the lab's kb/ beside its snapshot store
    assert isinstance(index, BedrockKnowledgeIndex)
    assert (index.lab, index.knowledge_base_id, index.data_source_id) == (
        "vault-13",
        "KB13000000",
        "DS13000000",
    )
    assert (index.bucket, index.root) == ("westtek-prod-snapshots-1-eu", "labs/vault-13/kb/")
    index.close()


def test_a_lab_without_a_knowledge_base_or_bad_ids_is_refused_in_one_line(monkeypatch, tmp_path):
    path = tmp_path / "unused.sqlite"
    monkeypatch.setenv("WESTTEK_STORE", str(tmp_path / "store"))  # a local store: no bucket
    backend = KnowledgeIndexBackend(
        backend="bedrock",
        knowledge_base_ids={"vault-13": "KB13000000"},
        data_source_ids={"vault-13": "DS13000000"},
    )
    assert backend.bucket == ""
    for lab, missing in (("vault-101", "knowledge_base_ids"), ("vault-13", "bucket")):
        backend.lab_id = lab
        with pytest.raises(ValueError) as error:
            backend.open_index(path)
        assert missing in str(error.value) and "\n" not in str(error.value)
    backend.data_source_ids = {}
    with pytest.raises(ValueError, match="no Bedrock knowledge base configured for lab 'vault-13'"):
        backend.open_index(path)

    for raw, reason in (("{vault-13: KB1}", "is not JSON"), ('["KB1"]', "JSON object")):
        monkeypatch.setenv("WESTTEK_KNOWLEDGE_BASE_IDS", raw)
        with pytest.raises(ValueError, match=reason) as error:
            _ = KnowledgeIndexBackend().knowledge_base_ids
        assert "$WESTTEK_KNOWLEDGE_BASE_IDS" in str(error.value)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("prefix", ["kb/", "labs/{lab}/kb", "labs/{lab}/{kind}/"])
def test_the_prefix_must_keep_each_lab_apart(prefix):
    with pytest.raises(TraitError, match="knowledge-base prefix"):
        KnowledgeIndexBackend(prefix=prefix)
    assert KnowledgeIndexBackend(prefix="kb/{lab}/").prefix == "kb/{lab}/"


def test_one_researchers_ingest_never_removes_anothers_documents(open_index, bedrock, s3, tmp_path):
    # Given alice's and bob's servers in one lab, each with its own analysis.ipynb
    homes = {}
    for who, text in (("alice", "kernel density of the spectrometer peaks"),
                      ("bob", "fitted decay of the beam current for figure 3")):  # fmt: skip
        homes[who] = tmp_path / who
        homes[who].mkdir()
        (homes[who] / "analysis.ipynb").write_bytes(notebook(f"# {text}\nprint(1)"))
    alice = KnowledgeBase(tmp_path / "a.sqlite", index=open_index("vault-13", "alice"))
    alice.ingest_workspace(homes["alice"])
    bob = KnowledgeBase(tmp_path / "b.sqlite", index=open_index("vault-13", "bob"))
    # When bob's server ingests its workspace (which lacks alice's files), twice
    bob.ingest_workspace(homes["bob"])
    bob.ingest_workspace(homes["bob"])
    # Then each environment's documents are under its own prefix, alice's all still there
    stored = keys(s3, bedrock.bucket)
    assert any(k.startswith("labs/vault-13/kb/env/alice/notebook/") for k in stored)
    assert any(k.startswith("labs/vault-13/kb/env/bob/notebook/") for k in stored)
    assert {p["metadata"]["environment"] for p in bedrock.passages["KB13000000"]} == {
        "alice", "bob",
    }  # fmt: skip
    # and each finds the other's notebook under its owner's name, its own as it is
    (found, *_) = alice.search("fitted decay of the beam current", k=1)
    assert found.source == "bob/analysis.ipynb"
    (found, *_) = alice.search("kernel density spectrometer peaks", k=1)
    assert found.source == "analysis.ipynb"
