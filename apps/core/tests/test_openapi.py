"""The OpenAPI document at /api/v1/openapi.json is what client generators read: it must
be valid, say what every operation does, and type every error it can answer."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}
ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
LISTS = {
    "teams_list",
    "team_members_list",
    "team_invitations_list",
    "backends_list",
    "assistants_list",
    "runs_list",
    "prompts_list",
    "prompt_versions_list",
    "prompt_labels_list",
    "prompt_labels_history",
    "conversations_list",
    "messages_list",
    "keys_list",
    "quotas_list",
    "usage_records_list",
    "usage_records_of_caller",
    "prices_list",
}
ORDERED = {
    "assistants_list": "name",
    "runs_list": "-created_at",
    "prompts_list": "name",
    "conversations_list": "-updated_at",
    "keys_list": "-created_at",
}


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def parameters(operation: dict) -> dict[str, dict]:
    return {p["name"]: p for p in operation.get("parameters", [])}


def test_the_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["servers"] and document["servers"][0]["url"]


def test_every_operation_is_named_summarised_described_and_tagged(document):
    declared = {tag["name"] for tag in document["tags"]}
    assert all(tag.get("description") for tag in document["tags"])
    ids = []
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation.get("operationId"), where
        assert operation.get("summary", "").strip(), where
        assert operation.get("description", "").strip(), where
        assert operation.get("tags") and set(operation["tags"]) <= declared, where
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    assert len(ids) >= 50


def test_errors_are_documented_with_the_shared_schema(document):
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        expected = {"401", "422", "429"}
        if "{team_slug}" in path:
            expected |= {"403", "404"}
        if "requestBody" in operation:
            expected |= {"413"}
        assert expected <= set(responses), (where, sorted(expected - set(responses)))
        for status, response in responses.items():
            if status.startswith("4"):
                content = response.get("content", {}).get("application/json", {})
                assert content.get("schema") == ERROR_REF, (where, status)

    error = document["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["error"]
    detail_ref = error["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    detail = document["components"]["schemas"][detail_ref]
    assert set(detail["required"]) == {"type", "message", "param", "code"}
    assert all(field.get("description") for field in detail["properties"].values())


def test_the_bearer_scheme_guards_every_operation(document):
    schemes = document["components"]["securitySchemes"]
    bearer = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and scheme.get("scheme") == "bearer"
    ]
    assert bearer
    for path, method, operation in operations(document):
        named = {name for requirement in operation.get("security", []) for name in requirement}
        assert set(bearer) & named, f"{method.upper()} {path}"


def test_every_list_is_paged_with_the_envelope(document):
    schemas = document["components"]["schemas"]
    paged = set()
    for path, method, operation in operations(document):
        ok = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if method != "get" or not ok:
            continue
        schema = ok["schema"]
        is_array = schema.get("type") == "array"
        assert not is_array, f"GET {path} answers a bare array"
        name = schema.get("$ref", "").rsplit("/", 1)[-1]
        if not name.startswith("Paged"):
            continue
        paged.add(operation["operationId"])
        envelope = schemas[name]
        assert set(envelope["required"]) == {"items", "count", "next_offset"}
        assert envelope["properties"]["items"]["type"] == "array"
        params = parameters(operation)
        assert params["limit"]["schema"]["maximum"] == 200
        assert params["limit"]["schema"]["default"] == 50
        assert params["offset"]["schema"]["minimum"] == 0
    assert paged == LISTS


@pytest.mark.parametrize(("operation_id", "default"), sorted(ORDERED.items()))
def test_main_lists_document_their_order_whitelist(document, operation_id, default):
    [operation] = [op for _, _, op in operations(document) if op["operationId"] == operation_id]
    order = parameters(operation)["order"]
    assert order["schema"]["default"] == default
    values = order["schema"]["enum"]
    assert default in values and {"created_at", "-created_at"} <= set(values)
    assert all(f"-{value}" in values for value in values if not value.startswith("-"))
    assert order["description"]
