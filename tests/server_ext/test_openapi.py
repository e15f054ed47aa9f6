"""The OpenAPI document describes exactly the routes and verbs the handlers serve."""

import json

from openapi_spec_validator import validate

from westtek_server_ext.handlers import handler_routes
from westtek_server_ext.openapi import openapi_document, path_template

VERBS = ("get", "post", "put", "patch", "delete")


def test_the_document_is_valid_openapi():
    validate(openapi_document(handler_routes()))


def test_every_handler_verb_is_documented_and_every_documented_verb_is_served():
    paths = openapi_document(handler_routes())["paths"]
    routes = handler_routes()
    assert sorted(paths) == sorted(path_template(pattern) for pattern, _ in routes)
    for pattern, handler in routes:
        served = {verb for verb in VERBS if verb in vars(handler)}
        assert set(paths[path_template(pattern)]) == served, handler.__name__
        for verb, operation in paths[path_template(pattern)].items():
            wanted = set(handler.operations[verb].query)
            documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
            assert documented == wanted


def test_path_parameters_match_the_route_groups():
    for template, item in openapi_document(handler_routes())["paths"].items():
        for operation in item.values():
            named = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert named == {part[1:-1] for part in template.split("/") if part.startswith("{")}


async def test_the_server_serves_the_document(jp_fetch):
    response = await jp_fetch("westtek", "api", "openapi.json")
    assert json.loads(response.body) == json.loads(json.dumps(openapi_document(handler_routes())))
