"""The tools' arguments: a pydantic model per tool, the JSON schema it advertises, the check.

Each tool declares its arguments as a :class:`ToolArguments` model: strict types (``"3"``
is not an integer, ``true`` not a number) and no argument the model does not name. The
schema the providers send to the models is the model's own (``json_schema``), so what a
model is told and what is checked cannot drift apart; a ``null`` argument means "not
given", so an optional argument is advertised as its plain type.

``validate_arguments`` turns pydantic's errors into the one line a model can act on:
unknown arguments first, then a missing required one, then the first mistyped one.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from westtek_core.agents.tools.results import JSON, ToolError


class ToolArguments(BaseModel):
    """Base of the tools' argument models: strict types, nothing beyond the model's fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Text = Annotated[str, Field(min_length=1)]
"""A required string argument (an empty one counts as missing)."""

EnvironmentId = Annotated[str | None, Field(description="The environment (default: this one)")]
"""The environment a tool reads: only the context's own is accepted (the tools check)."""

Days = Annotated[float | None, Field(description="Only the last this many days (default: all)")]

PassageKind = Literal["notebook", "manifest", "summary", "install-history", "experiment"]
"""The kinds of knowledge-base passage a search can be narrowed to."""


class EnvironmentArguments(ToolArguments):
    """The arguments of a tool that reads the whole environment and takes nothing else."""

    environment_id: EnvironmentId = None


class _ToolSchema(GenerateJsonSchema):
    """JSON schemas as the model providers want them: plain types, no titles, no nulls."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])  # null is "not given": no need to say

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@cache
def json_schema(model: type[ToolArguments]) -> JSON:
    """The JSON schema of a tool's input: an object of the model's fields and nothing else."""
    schema = model.model_json_schema(schema_generator=_ToolSchema)
    return {
        "type": "object",
        "properties": schema.get("properties", {}),
        "required": schema.get("required", []),
        "additionalProperties": False,
    }


def validate_arguments(tool: str, model: type[ToolArguments], arguments: Any) -> JSON:
    """The arguments a model gave ``tool``, checked: those given, as plain JSON values.

    Raises :class:`ToolError` with one line saying what is wrong.
    """
    if not isinstance(arguments, dict):
        raise ToolError(f"{tool}: arguments must be a JSON object")
    # a null argument is one not given (unless the model does not know it at all)
    given = {k: v for k, v in arguments.items() if v is not None or k not in model.model_fields}
    try:
        checked = model.model_validate(given)
    except ValidationError as e:
        raise ToolError(f"{tool}: {_first_problem(model, e)}") from None
    return checked.model_dump(exclude_none=True)


def _first_problem(model: type[ToolArguments], error: ValidationError) -> str:
    """What a model needs to hear first to correct its call."""
    problems = error.errors()
    unknown = sorted(str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden")
    if unknown:
        return f"unknown argument(s) {', '.join(unknown)}"
    required = set(json_schema(model)["required"])
    for problem in problems:
        name = str(problem["loc"][0])
        if name in required and problem["type"] in ("missing", "string_too_short"):
            return f"missing required argument {name}"
    problem = problems[0]
    name = str(problem["loc"][0])
    spec = json_schema(model)["properties"].get(name, {})
    allowed = spec.get("enum") or spec.get("items", {}).get("enum")
    if allowed and problem["type"] in ("literal_error", "enum"):
        return f"{name} must be one of {', '.join(map(str, allowed))}"
    return f"{name} must be of type {spec.get('type', 'the documented one')}"
