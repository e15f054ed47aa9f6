"""The knowledge-base index on a lab's own Bedrock Knowledge Base, fed by an S3 data source.

Every parent passage is one S3 object with its Bedrock metadata sidecar; Bedrock's ingestion
job embeds them and ``retrieve`` searches them. Each lab has its own knowledge base whose data
source reads only the lab's prefix (infra/lib/ai-stack.ts), and its servers may retrieve from
that one only. The lab is still in every key, every sidecar and every retrieve filter (defence
in depth): an index object is bound to one lab and can neither write outside that lab's prefix
nor return another lab's passages, even when pointed at another lab's knowledge base.

Layout (``lab``, ``kind``, ``source`` and ``fingerprint`` percent-encoded into one path segment
each; ``{root}`` is the prefix template with the lab filled in, by default ``labs/{lab}/kb/``,
beside the lab's snapshot store; a researcher's server adds ``env/{environment}/`` to it, so
that its ingest lists and replaces only its own environment's documents)::

    {root}{kind}/{source}/{fingerprint}/{n}.md                 the parent's text
    {root}{kind}/{source}/{fingerprint}/{n}.md.metadata.json   its metadataAttributes

The fingerprint is a key segment so that a new version never overwrites the old one (the
old one is deleted only once the new one is complete) and so that ``fingerprint()`` is one
``ListObjectsV2`` of the document's prefix, with no object read. Parent 0 is written last:
a version is complete when its ``0.md`` exists.

Point each lab's data source at its ``{root}`` with chunking strategy ``NONE``: the parents
are already chunked (``chunking.py``), so each retrieved chunk is then a whole parent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote

from westtek_core.kb.chunking import Parent
from westtek_core.kb.index import SEARCH_MODES, KnowledgeIndex, SearchResult

log = logging.getLogger(__name__)

SIDECAR = ".metadata.json"
# a lab's passages sit beside its snapshot store (s3://bucket/labs/{lab}/), as infra expects
DEFAULT_PREFIX = "labs/{lab}/kb/"
# retrieve returns at most 100 results; ask for more than k since several may share a parent
MAX_RESULTS = 100
SEARCH_TYPES = {"hybrid": "HYBRID", "embedding": "SEMANTIC"}


class KnowledgeIndexError(RuntimeError):
    """An AWS call of the index failed: one line naming the operation and AWS's reason."""


def _segment(text: str) -> str:
    """One key segment: ``/`` and ``%`` encoded, so different texts never share a key."""
    return quote(text, safe="")


def retrieval_filter(
    lab: str, kinds: set[str] | None, environment: str | None = None
) -> dict[str, Any]:
    """The retrieve filter: always this lab; the given kinds and environment when given."""
    conditions: list[dict[str, Any]] = [{"equals": {"key": "lab", "value": lab}}]
    if kinds:
        conditions.append({"in": {"key": "kind", "value": sorted(kinds)}})
    if environment is not None:
        conditions.append({"equals": {"key": "environment", "value": environment}})
    return conditions[0] if len(conditions) == 1 else {"andAll": conditions}


def make_retrieve_kwargs(
    knowledge_base_id: str,
    lab: str,
    query: str,
    k: int,
    kinds: set[str] | None,
    mode: str,
    environment: str | None = None,
) -> dict[str, Any]:
    """The bedrock-agent-runtime ``retrieve`` keyword arguments (a pure builder).

    ``environment``: only the passages written under that environment's scope.
    """
    if mode == "bm25":
        raise ValueError(
            "a Bedrock knowledge base has no keyword-only (bm25) search: use mode 'hybrid' "
            "or 'embedding'"
        )
    if mode not in SEARCH_TYPES:
        raise ValueError(f"search mode must be one of {', '.join(SEARCH_MODES)}")
    return {
        "knowledgeBaseId": knowledge_base_id,
        "retrievalQuery": {"text": query},
        "retrievalConfiguration": {
            "vectorSearchConfiguration": {
                "numberOfResults": min(MAX_RESULTS, max(k, 1) * 4),
                "overrideSearchType": SEARCH_TYPES[mode],
                "filter": retrieval_filter(lab, kinds, environment),
            }
        },
    }


def make_metadata(
    lab: str, source: str, kind: str, fingerprint: str, parent: Parent, environment: str = ""
) -> bytes:
    """A parent's Bedrock metadata sidecar: what filters and citations need."""
    locator = parent.children[0].locator if parent.children else ""
    attributes = {
        "lab": lab,
        "source": source,
        "kind": kind,
        "locator": locator,
        "fingerprint": fingerprint,
    }
    if environment:
        attributes["environment"] = environment
    return json.dumps({"metadataAttributes": attributes}, sort_keys=True).encode()


def _describe(operation: str, error: Exception) -> str:
    """One line: the operation, and AWS's code and message (or the connection failure)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        info = response.get("Error", {})
        detail = f"{info.get('Code', 'Error')}: {info.get('Message') or error}"
    else:
        detail = str(error)
    return f"Bedrock knowledge base: {operation} failed: {' '.join(detail.split())}"


class BedrockKnowledgeIndex(KnowledgeIndex):
    """One lab's passages in the lab's Bedrock Knowledge Base, fed by an S3 data source.

    Ingestion is asynchronous on Bedrock: a passage written by ``replace`` is searchable
    once the ingestion job it starts has finished.
    """

    def __init__(
        self,
        lab: str,
        *,
        knowledge_base_id: str,
        data_source_id: str,
        bucket: str,
        prefix: str = DEFAULT_PREFIX,
        region: str = "",
        s3_endpoint_url: str = "",
        agent_endpoint_url: str = "",
        runtime_endpoint_url: str = "",
        environment: str = "",
        own_only: bool = False,
    ) -> None:
        if not lab:
            # the lab names the keys and the retrieve filter: without it labs could mix
            raise ValueError("a Bedrock knowledge-base index needs a lab id")
        for name, value in (
            ("knowledge_base_id", knowledge_base_id),
            ("data_source_id", data_source_id),
            ("bucket", bucket),
        ):
            if not value:
                raise ValueError(f"a Bedrock knowledge-base index needs {name}")
        self.lab = lab
        self.knowledge_base_id = knowledge_base_id
        self.data_source_id = data_source_id
        self.bucket = bucket
        if "{lab}" not in prefix:
            raise ValueError(f"the knowledge-base prefix {prefix!r} must hold {{lab}}")
        # each environment writes, lists and replaces only under its own prefix, so one
        # researcher's ingest never removes another's documents from the lab's base
        self.environment = environment
        # the hub's lab memory searches only what it wrote, not servers' live workspaces
        self.own_only = own_only
        self.root = prefix.format(lab=_segment(lab)) + (
            f"env/{_segment(environment)}/" if environment else ""
        )
        self._region = region
        self._endpoints = {
            "s3": s3_endpoint_url,
            "bedrock-agent": agent_endpoint_url,
            "bedrock-agent-runtime": runtime_endpoint_url,
        }
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- AWS clients ----------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        """The index's boto3 client for ``service``, made once (clients are thread-safe)."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                from botocore.config import Config

                from westtek_core.aws import aws_client

                config = Config(
                    connect_timeout=10,
                    read_timeout=60,
                    retries={"mode": "standard", "total_max_attempts": 3},
                )
                client = aws_client(
                    service,
                    region_name=self._region or None,
                    endpoint_url=self._endpoints[service] or None,
                    config=config,
                )
                self._clients[service] = client
            return client

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:
        """One AWS call; its failure becomes a one-line ``KnowledgeIndexError``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client(service), operation)(**kwargs)
        except (BotoCoreError, ClientError) as e:
            raise KnowledgeIndexError(_describe(operation, e)) from e

    # -- keys -----------------------------------------------------------------------------

    def _document_prefix(self, source: str, kind: str) -> str:
        return f"{self.root}{_segment(kind)}/{_segment(source)}/"

    def _keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call("s3", "list_objects_v2", Bucket=self.bucket, Prefix=prefix, **token)
            keys += [str(o["Key"]) for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def _delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            response = self._call(
                "s3", "delete_objects", Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise KnowledgeIndexError(
                    f"Bedrock knowledge base: delete_objects failed: {first.get('Code')}: "
                    f"{first.get('Message')} ({first.get('Key')})"
                )

    def _sync(self) -> None:
        """Start an ingestion job so Bedrock picks up what S3 now holds."""
        from botocore.exceptions import ClientError

        try:
            self._client("bedrock-agent").start_ingestion_job(
                knowledgeBaseId=self.knowledge_base_id, dataSourceId=self.data_source_id
            )
        except ClientError as e:
            # one job per data source at a time: the running one or the next picks it up
            if e.response.get("Error", {}).get("Code") == "ConflictException":
                log.info("an ingestion job is already running on %s", self.data_source_id)
                return
            raise KnowledgeIndexError(_describe("start_ingestion_job", e)) from e
        except Exception as e:
            raise KnowledgeIndexError(_describe("start_ingestion_job", e)) from e

    # -- the interface --------------------------------------------------------------------

    def fingerprint(self, source: str, kind: str) -> str | None:
        """The fingerprint of the document's one complete version, read from its keys.

        None when there is none, or when a replace that failed while deleting left two:
        the next ingest then rewrites the document and removes both.
        """
        prefix = self._document_prefix(source, kind)
        complete = {
            key[len(prefix) :].split("/", 1)[0]
            for key in self._keys(prefix)
            if key.endswith("/0.md")
        }
        return unquote(complete.pop()) if len(complete) == 1 else None

    def sources(self, kind: str) -> list[str]:
        """Every source of a kind: the key prefixes one level down (one list per 1,000)."""
        prefix = f"{self.root}{_segment(kind)}/"
        found: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(
                "s3",
                "list_objects_v2",
                Bucket=self.bucket,
                Prefix=prefix,
                Delimiter="/",
                **token,
            )
            found += [
                unquote(p["Prefix"][len(prefix) :].rstrip("/"))
                for p in page.get("CommonPrefixes", [])
            ]
            if not page.get("IsTruncated"):
                return found
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def replace(self, source: str, kind: str, fingerprint: str, parents: Sequence[Parent]) -> int:
        """Write the new version, delete the old ones, then start an ingestion job.

        A failed upload removes what it wrote (as far as it can) and keeps the old version.
        """
        prefix = self._document_prefix(source, kind)
        version = f"{prefix}{_segment(fingerprint)}/"
        before = set(self._keys(prefix))
        written: list[str] = []
        try:
            # parent 0 last, each sidecar before its parent: 0.md marks a complete version
            for n in reversed(range(len(parents))):
                key = f"{version}{n}.md"
                metadata = make_metadata(
                    self.lab, source, kind, fingerprint, parents[n], self.environment
                )
                for name, body in ((key + SIDECAR, metadata), (key, parents[n].text.encode())):
                    self._call("s3", "put_object", Bucket=self.bucket, Key=name, Body=body)
                    written.append(name)
        except KnowledgeIndexError:
            try:  # keys of an unchanged version were rewritten with the same bytes: keep them
                self._delete([key for key in written if key not in before])
            except KnowledgeIndexError:
                log.warning("could not remove the partial upload of %s", source)
            raise
        self._delete(sorted(before - set(written)))
        self._sync()
        return sum(len(p.children) for p in parents)

    def remove(self, source: str, kind: str) -> None:
        """Delete the document's objects and start an ingestion job."""
        self._delete(self._keys(self._document_prefix(source, kind)))
        self._sync()

    def search(
        self, query: str, k: int = 5, kinds: set[str] | None = None, mode: str = "hybrid"
    ) -> list[SearchResult]:
        """The ``k`` best passages of this lab, one per parent, best first."""
        request = make_retrieve_kwargs(
            self.knowledge_base_id,
            self.lab,
            query,
            k,
            kinds,
            mode,
            self.environment if self.own_only else None,
        )
        response = self._call("bedrock-agent-runtime", "retrieve", **request)
        results: list[SearchResult] = []
        seen: set[str] = set()
        for item in response.get("retrievalResults", []):
            metadata = item.get("metadata") or {}
            # the filter already excludes other labs: this only guards a misconfigured filter
            if metadata.get("lab") != self.lab or (kinds and metadata.get("kind") not in kinds):
                continue
            owner = str(metadata.get("environment") or "")
            if self.own_only and owner != self.environment:
                continue
            location = (item.get("location") or {}).get("s3Location") or {}
            parent = str(location.get("uri") or item.get("documentId") or len(seen))
            if parent in seen:
                continue
            seen.add(parent)
            source = str(metadata.get("source", ""))
            if owner and owner != self.environment:
                source = f"{owner}/{source}"  # a colleague's: whose, as the lab's memory says
            results.append(
                SearchResult(
                    source=source,
                    locator=str(metadata.get("locator", "")),
                    score=float(item.get("score") or 0.0),
                    text=str((item.get("content") or {}).get("text", "")),
                    kind=str(metadata.get("kind", "")),
                )
            )
        results.sort(key=lambda r: -r.score)
        return results[:k]

    def close(self) -> None:
        """Close the clients' connection pools."""
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
