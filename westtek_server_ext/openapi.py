"""The OpenAPI 3 document of ``westtek/api/``, built from the route table and its models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from westtek_core.version import __version__
from westtek_server_ext.models import ErrorBody

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_REF = "#/components/schemas/{model}"


def path_template(pattern: str) -> str:
    """A route regex as an OpenAPI path: ``(?P<id>…)`` becomes ``{id}``."""
    return _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern)


def _schema_ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=_REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def openapi_document(routes: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The document of ``routes``, the extension's route table: every verb, parameter and body."""
    schemas: dict[str, Any] = {}
    error = {
        "description": "An error; `message` says what to do about it",
        "content": {"application/json": {"schema": _schema_ref(ErrorBody, schemas)}},
    }
    paths: dict[str, Any] = {}
    for pattern, handler in routes:
        template = path_template(pattern)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"\{(\w+)\}", template)
        ]
        for verb, op in handler.operations.items():
            answer: dict[str, Any] = {"description": op.summary}
            if op.response is not None:
                schema = _schema_ref(op.response, schemas)
                answer["content"] = {op.content_type: {"schema": schema}}
            else:
                answer["content"] = {
                    op.content_type: {
                        "schema": {"type": "object"}
                        if op.content_type == "application/json"
                        else {"type": "string"}
                    }
                }
            operation: dict[str, Any] = {
                "summary": op.summary,
                "operationId": f"{verb}_{handler.__name__.removesuffix('Handler')}",
                "parameters": parameters
                + [
                    {"name": name, "in": "query", "description": text, "schema": {"type": "string"}}
                    for name, text in op.query.items()
                ],
                "responses": {str(op.status): answer, "4XX": error},
            }
            if op.request is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema_ref(op.request, schemas)}},
                }
            paths.setdefault(template, {})[verb] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "West Tek researcher API",
            "version": __version__,
            "description": "The Jupyter server extension's API under {base_url}westtek/api/. "
            "Jupyter server authentication applies to every route, and XSRF to every "
            "POST and PUT made with cookies.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
