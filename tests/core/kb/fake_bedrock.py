"""A loopback stand-in for the Bedrock Knowledge Base calls the index makes.

It speaks the REST subset botocore sends (bedrock-agent ``StartIngestionJob``,
bedrock-agent-runtime ``Retrieve``) for several knowledge bases, each with one S3 data
source over its own inclusion prefix of one bucket, as infra deploys one per lab. An
ingestion job reads the objects under its data source's prefix and their ``.metadata.json``
sidecars from S3 (moto) as Bedrock does; retrieve scores each passage its knowledge base
ingested by how many of the query's words it holds and honours the metadata filter's
``equals``, ``in`` and ``andAll``. Every request body is kept for the tests.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_WORD = re.compile(r"\w+")
_INGEST = re.compile(r"^/knowledgebases/([^/]+)/datasources/([^/]+)/ingestionjobs/?$")
_RETRIEVE = re.compile(r"^/knowledgebases/([^/]+)/retrieve$")


def matches(metadata: dict[str, Any], condition: dict[str, Any]) -> bool:
    """Whether a passage's metadata passes a Bedrock retrieval filter."""
    ((operator, operand),) = condition.items()
    if operator == "andAll":
        return all(matches(metadata, c) for c in operand)
    if operator == "equals":
        return bool(metadata.get(operand["key"]) == operand["value"])
    if operator == "in":
        return metadata.get(operand["key"]) in operand["value"]
    raise ValueError(f"the fake does not filter with {operator}")


class FakeBedrock:
    """Knowledge bases with one S3 data source each over one bucket, served on 127.0.0.1."""

    def __init__(self, s3: Any, bucket: str):
        self.s3 = s3
        self.bucket = bucket
        # knowledge base id → (data source id, inclusion prefix)
        self.data_sources: dict[str, tuple[str, str]] = {}
        # knowledge base id → its ingested passages: uri, text, metadata
        self.passages: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.jobs = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_knowledge_base(self, knowledge_base_id: str, data_source_id: str, prefix: str) -> None:
        """A knowledge base whose data source reads the bucket's objects under ``prefix``."""
        self.data_sources[knowledge_base_id] = (data_source_id, prefix)
        self.passages[knowledge_base_id] = []

    def ingest(self, knowledge_base_id: str) -> None:
        """What an ingestion job does: every object of the data source, with its sidecar."""
        passages = []
        prefix = self.data_sources[knowledge_base_id][1]
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
        for key in sorted(keys):
            if key.endswith(".metadata.json"):
                continue
            text = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            metadata: dict[str, Any] = {}
            if key + ".metadata.json" in keys:
                sidecar = self.s3.get_object(Bucket=self.bucket, Key=key + ".metadata.json")
                metadata = json.loads(sidecar["Body"].read())["metadataAttributes"]
            uri = f"s3://{self.bucket}/{key}"
            passages.append({"uri": uri, "text": text, "metadata": metadata})
        self.passages[knowledge_base_id] = passages

    def retrieve(self, knowledge_base_id: str, body: dict[str, Any]) -> dict[str, Any]:
        config = body["retrievalConfiguration"]["vectorSearchConfiguration"]
        query = {w.lower() for w in _WORD.findall(body["retrievalQuery"]["text"])}
        scored = []
        for passage in self.passages[knowledge_base_id]:
            if "filter" in config and not matches(passage["metadata"], config["filter"]):
                continue
            words = {w.lower() for w in _WORD.findall(passage["text"])}
            overlap = len(query & words) / max(len(query), 1)
            if overlap:
                scored.append((overlap, passage))
        scored.sort(key=lambda item: -item[0])
        return {
            "retrievalResults": [
                {
                    "content": {"type": "TEXT", "text": p["text"]},
                    "location": {"type": "S3", "s3Location": {"uri": p["uri"]}},
                    "metadata": p["metadata"] | {"x-amz-bedrock-kb-source-uri": p["uri"]},
                    "score": score,
                }
                for score, p in scored[: config.get("numberOfResults", 5)]
            ]
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _answer(self, status: int, body: dict[str, Any], error: str = "") -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _unknown(self, kb: str, ds: str = "") -> bool:
                if kb in fake.data_sources and ds in ("", fake.data_sources[kb][0]):
                    return False
                message = f"no knowledge base {kb} with data source {ds}".strip()
                self._answer(404, {"message": message}, "ResourceNotFoundException")
                return True

            def do_PUT(self) -> None:
                match = _INGEST.match(self.path)
                if not match:
                    return self._answer(404, {"message": self.path}, "UnknownOperation")
                body = self._body()
                fake.requests.append(("StartIngestionJob", body))
                if self._unknown(match[1], match[2]):
                    return None
                fake.ingest(match[1])
                fake.jobs += 1
                now = "2026-01-01T00:00:00Z"
                job = {
                    "knowledgeBaseId": match[1],
                    "dataSourceId": match[2],
                    "ingestionJobId": f"JOB{fake.jobs}",
                    "status": "COMPLETE",
                    "startedAt": now,
                    "updatedAt": now,
                }
                return self._answer(202, {"ingestionJob": job})

            def do_POST(self) -> None:
                match = _RETRIEVE.match(self.path)
                if not match:
                    return self._answer(404, {"message": self.path}, "UnknownOperation")
                body = self._body()
                fake.requests.append(("Retrieve", body))
                if self._unknown(match[1]):
                    return None
                return self._answer(200, fake.retrieve(match[1], body))

        return Handler
