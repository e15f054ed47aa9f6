"""Which index the knowledge base uses: the embedded SQLite file, or a Bedrock Knowledge Base.

Every place that opens a knowledge base (the CLI, the notebook server's snapshot refresh and
its agents) asks one ``KnowledgeIndexBackend`` for it, so one setting
(``c.KnowledgeIndexBackend.backend = "bedrock"``) moves them all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from traitlets import Dict, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from westtek_core.kb.bedrock import DEFAULT_PREFIX
from westtek_core.kb.index import KnowledgeIndex
from westtek_core.labs import server_lab_id

if TYPE_CHECKING:
    from westtek_core.kb.knowledge_base import KnowledgeBase

BACKENDS = ("sqlite", "bedrock")


def _ids_from_environment(name: str) -> dict[str, str]:
    """A JSON object of lab id → id from the environment variable ``name`` ({} when unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        ids = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"${name} is not JSON: {e}") from None
    if not isinstance(ids, dict) or not all(isinstance(v, str) for v in ids.values()):
        raise ValueError(f"${name} must be a JSON object of lab id to id, not {raw[:80]!r}")
    return {str(lab): value for lab, value in ids.items()}


class KnowledgeIndexBackend(LoggingConfigurable):
    """Open a lab's knowledge-base index on the configured backend."""

    backend = Unicode(
        config=True,
        help="Where the knowledge base's index lives: 'sqlite' (an embedded file per lab, "
        "BM25 and local embeddings) or 'bedrock' (each lab's own Bedrock Knowledge Base, fed "
        "from the lab's prefix of an S3 bucket). Default: $WESTTEK_KB_BACKEND, else sqlite.",
    )

    @default("backend")
    def _default_backend(self) -> str:
        return os.environ.get("WESTTEK_KB_BACKEND") or "sqlite"

    @validate("backend")
    def _valid_backend(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value not in BACKENDS:
            raise TraitError(f"knowledge-base backend must be one of {', '.join(BACKENDS)}")
        return value

    lab_id = Unicode(
        config=True,
        help="The lab whose knowledge base the bedrock backend opens. Default: "
        "$WESTTEK_LAB_ID (set by the spawner).",
    )

    @default("lab_id")
    def _default_lab_id(self) -> str:
        return server_lab_id()

    knowledge_base_ids = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="Each lab's Bedrock Knowledge Base id, by lab id (bedrock backend; the CDK app "
        "makes one per lab). Default: $WESTTEK_KNOWLEDGE_BASE_IDS (JSON), else none.",
    )

    @default("knowledge_base_ids")
    def _default_knowledge_base_ids(self) -> dict[str, str]:
        return _ids_from_environment("WESTTEK_KNOWLEDGE_BASE_IDS")

    data_source_ids = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="The id of each lab's knowledge-base S3 data source, by lab id: the one whose "
        "ingestion jobs the bedrock backend starts. Default: "
        "$WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS (JSON), else none.",
    )

    @default("data_source_ids")
    def _default_data_source_ids(self) -> dict[str, str]:
        return _ids_from_environment("WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS")

    bucket = Unicode(
        config=True,
        help="The S3 bucket the labs' data sources read, where each passage is written as an "
        "object with its metadata sidecar (bedrock backend). Default: the bucket of the "
        "snapshot store when $WESTTEK_STORE is an s3:// location (as the spawner sets it).",
    )

    @default("bucket")
    def _default_bucket(self) -> str:
        store = urlparse(os.environ.get("WESTTEK_STORE", ""))
        return store.netloc if store.scheme == "s3" else ""

    prefix = Unicode(
        DEFAULT_PREFIX,
        config=True,
        help="Key prefix of a lab's passages in the bucket, with {lab} standing for the "
        "percent-encoded lab id: the inclusion prefix of that lab's data source. Default: "
        "labs/{lab}/kb/, beside the lab's snapshot store.",
    )

    @validate("prefix")
    def _valid_prefix(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        try:
            formatted = value.format(lab="lab")
        except (IndexError, KeyError, ValueError) as e:
            raise TraitError(f"knowledge-base prefix {value!r} is not a template: {e!r}") from e
        if "{lab}" not in value or not formatted.endswith("/"):
            # labs writing to one prefix would list and replace each other's documents
            raise TraitError(f"knowledge-base prefix {value!r} must hold {{lab}} and end in /")
        return value

    region = Unicode(
        config=True,
        help="AWS region of the knowledge base and bucket. Default: $AWS_REGION, else "
        "$AWS_DEFAULT_REGION, else boto3's configuration.",
    )

    @default("region")
    def _default_region(self) -> str:
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""

    s3_endpoint_url = Unicode(
        "",
        config=True,
        help="Another S3 endpoint (a VPC endpoint, or a local one in tests). Default: none "
        "(boto3's, which honours $AWS_ENDPOINT_URL).",
    )

    agent_endpoint_url = Unicode(
        "",
        config=True,
        help="Another bedrock-agent endpoint, which starts ingestion jobs. Default: none "
        "(boto3's, which honours $AWS_ENDPOINT_URL).",
    )

    runtime_endpoint_url = Unicode(
        "",
        config=True,
        help="Another bedrock-agent-runtime endpoint, which retrieves. Default: none "
        "(boto3's, which honours $AWS_ENDPOINT_URL).",
    )

    def is_built(self, index_path: Path) -> bool:
        """Whether there is an index to search (a Bedrock knowledge base always is)."""
        return self.backend != "sqlite" or index_path.exists()

    def open_index(
        self, index_path: Path, environment: str = "", own_only: bool = False
    ) -> KnowledgeIndex:
        """The lab's index: the SQLite file at ``index_path``, or the lab's Bedrock knowledge base.

        On Bedrock, ``environment`` (a server's environment id) is where its documents go:
        under its own prefix, so that no server's ingest removes another's; ``own_only``
        searches those alone. A lab with no Bedrock knowledge base (or data source)
        configured is refused with a one-line ``ValueError``.
        """
        if self.backend == "bedrock":
            from westtek_core.kb.bedrock import BedrockKnowledgeIndex

            return BedrockKnowledgeIndex(
                self.lab_id,
                knowledge_base_id=self._id_of("knowledge_base_ids"),
                data_source_id=self._id_of("data_source_ids"),
                bucket=self.bucket,
                prefix=self.prefix,
                region=self.region,
                s3_endpoint_url=self.s3_endpoint_url,
                agent_endpoint_url=self.agent_endpoint_url,
                runtime_endpoint_url=self.runtime_endpoint_url,
                environment=environment,
                own_only=own_only,
            )
        from westtek_core.kb.embedding import shared_embedder
        from westtek_core.kb.index import HybridSqliteIndex

        return HybridSqliteIndex(index_path, shared_embedder())

    def _id_of(self, trait: str) -> str:
        """The lab's entry of ``trait`` (a dict by lab id); a one-line error without one."""
        lab = self.lab_id
        if not lab:
            # the per-lab ids, keys and retrieve filter all need the lab
            raise ValueError("a Bedrock knowledge-base index needs a lab id")
        value = getattr(self, trait).get(lab)
        if not value:
            raise ValueError(
                f"no Bedrock knowledge base configured for lab {lab!r}: "
                f"c.KnowledgeIndexBackend.{trait} has no entry for it"
            )
        return str(value)

    def open_knowledge_base(self, index_path: Path, environment: str = "") -> KnowledgeBase:
        """A ``KnowledgeBase`` on :meth:`open_index` (``index_path`` as its path)."""
        from westtek_core.kb.knowledge_base import KnowledgeBase

        return KnowledgeBase(index_path, index=self.open_index(index_path, environment))
