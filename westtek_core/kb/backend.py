"""Which index the knowledge base uses: the embedded SQLite file, or a Bedrock Knowledge Base.

Every place that opens a knowledge base (the CLI, the notebook server's snapshot refresh and
its agents) asks one ``KnowledgeIndexBackend`` for it, so one setting
(``c.KnowledgeIndexBackend.backend = "bedrock"``) moves them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from westtek_core.kb.index import KnowledgeIndex

if TYPE_CHECKING:
    from westtek_core.kb import KnowledgeBase

BACKENDS = ("sqlite", "bedrock")


class KnowledgeIndexBackend(LoggingConfigurable):
    """Open a lab's knowledge-base index on the configured backend."""

    backend = Unicode(
        config=True,
        help="Where the knowledge base's index lives: 'sqlite' (an embedded file per lab, "
        "BM25 and local embeddings) or 'bedrock' (a Bedrock Knowledge Base fed from S3, "
        "shared by the labs and filtered by lab). Default: $WESTTEK_KB_BACKEND, else sqlite.",
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
        help="The lab whose material a shared backend (bedrock) holds, when the caller does "
        "not say. Default: $WESTTEK_LAB_ID (set by the spawner).",
    )

    @default("lab_id")
    def _default_lab_id(self) -> str:
        return os.environ.get("WESTTEK_LAB_ID", "")

    knowledge_base_id = Unicode(
        config=True,
        help="The Bedrock Knowledge Base's id (bedrock backend). Default: $WESTTEK_BEDROCK_KB_ID.",
    )

    @default("knowledge_base_id")
    def _default_knowledge_base_id(self) -> str:
        return os.environ.get("WESTTEK_BEDROCK_KB_ID", "")

    data_source_id = Unicode(
        config=True,
        help="The id of the knowledge base's S3 data source that ingests the labs' passages "
        "(bedrock backend). Default: $WESTTEK_BEDROCK_KB_DATA_SOURCE_ID.",
    )

    @default("data_source_id")
    def _default_data_source_id(self) -> str:
        return os.environ.get("WESTTEK_BEDROCK_KB_DATA_SOURCE_ID", "")

    bucket = Unicode(
        config=True,
        help="The S3 bucket of that data source, where each passage is written as an object "
        "with its metadata sidecar (bedrock backend). Default: $WESTTEK_KB_BUCKET.",
    )

    @default("bucket")
    def _default_bucket(self) -> str:
        return os.environ.get("WESTTEK_KB_BUCKET", "")

    prefix = Unicode(
        "kb/",
        config=True,
        help="Key prefix of the passages in the bucket: the data source's inclusion prefix. "
        "Each lab's passages are below {prefix}{lab}/.",
    )

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
        """Whether there is an index to search (a shared knowledge base always is)."""
        return self.backend != "sqlite" or index_path.exists()

    def open_index(self, index_path: Path, lab_id: str | None = None) -> KnowledgeIndex:
        """The lab's index: the SQLite file at ``index_path``, or the lab's Bedrock share."""
        if self.backend == "bedrock":
            from westtek_core.kb.bedrock import BedrockKnowledgeIndex

            return BedrockKnowledgeIndex(
                lab_id or self.lab_id,
                knowledge_base_id=self.knowledge_base_id,
                data_source_id=self.data_source_id,
                bucket=self.bucket,
                prefix=self.prefix,
                region=self.region,
                s3_endpoint_url=self.s3_endpoint_url,
                agent_endpoint_url=self.agent_endpoint_url,
                runtime_endpoint_url=self.runtime_endpoint_url,
            )
        from westtek_core.kb.embedding import shared_embedder
        from westtek_core.kb.index import HybridSqliteIndex

        return HybridSqliteIndex(index_path, shared_embedder())

    def open_knowledge_base(self, index_path: Path, lab_id: str | None = None) -> KnowledgeBase:
        """A ``KnowledgeBase`` on :meth:`open_index` (``index_path`` as its path)."""
        from westtek_core.kb import KnowledgeBase

        return KnowledgeBase(index_path, index=self.open_index(index_path, lab_id))
