"""The OpenAPI 3.0 description of the server's HTTP API (pure, built from :mod:`.model`)."""

from __future__ import annotations

from typing import Any

from nats_tower_operator.towerserver.model import (
    ACCESS,
    ACCOUNTS,
    COLLECTIONS,
    OPERATORS,
    SIGNING_KEYS,
    USERS,
    Collection,
)

__all__ = ["openapi_document"]

_TEXT = {"type": "string", "maxLength": 255}
_LONG_TEXT = {"type": "string", "maxLength": 4096}
_SUBJECTS = {"type": "array", "items": {"type": "string"}, "maxItems": 100}
_ID = {"type": "string", "maxLength": 255}

# Writable fields per collection: (create-required, all writable on create, writable on PATCH).
_WRITABLE: dict[str, tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]]] = {
    OPERATORS: (("name",), {"name": _TEXT, "url": _LONG_TEXT}, ("name", "url")),
    ACCOUNTS: (
        ("operator", "name"),
        {
            "operator": _ID,
            "name": _TEXT,
            "user_jwt_ttl": {"type": "integer", "minimum": 0, "maximum": 315360000},
        },
        ("name", "user_jwt_ttl"),
    ),
    SIGNING_KEYS: (
        ("account", "role"),
        {
            "account": _ID,
            "role": _TEXT,
            "description": _LONG_TEXT,
            "publish": _SUBJECTS,
            "subscribe": _SUBJECTS,
        },
        ("role", "description", "publish", "subscribe"),
    ),
    USERS: (
        ("account", "name"),
        {"account": _ID, "name": _TEXT, "description": _LONG_TEXT, "signing_key": _ID},
        ("name", "description", "signing_key"),
    ),
    ACCESS: (
        ("account", "cluster", "namespace"),
        {"account": _ID, "cluster": _TEXT, "namespace": _TEXT},
        ("account", "cluster", "namespace"),
    ),
}


def _record_schema(c: Collection) -> dict[str, Any]:
    props: dict[str, Any] = {
        "collectionId": {"type": "string"},
        "collectionName": {"type": "string"},
    }
    for name, kind in c.public.items():
        if kind == "number":
            props[name] = {"type": "integer"}
        elif kind == "json":
            props[name] = {"type": "array", "items": {"type": "string"}}
        else:
            props[name] = {"type": "string"}
    return {"type": "object", "properties": props}


def _error_responses(*codes: int) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    names = {
        400: "Invalid request or validation failed",
        401: "Missing X-Token",
        403: "Wrong X-Token",
        404: "Not found",
        413: "Body too large",
    }
    return {str(code): {"description": names[code], **ref} for code in codes}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _collection_paths(c: Collection) -> dict[str, Any]:
    required, create_props, patch_names = _WRITABLE[c.name]
    record_ref = {"$ref": f"#/components/schemas/{c.name}"}
    fields_param = {"name": "fields", "in": "query", "schema": {"type": "string"}}
    id_param = {"name": "id", "in": "path", "required": True, "schema": _ID}
    list_params = [
        {"name": "filter", "in": "query", "schema": {"type": "string"}},
        {"name": "sort", "in": "query", "schema": {"type": "string"}},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {
            "name": "perPage",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
        },
        {"name": "skipTotal", "in": "query", "schema": {"type": "boolean"}},
        fields_param,
    ]
    list_schema = {
        "type": "object",
        "required": ["page", "perPage", "totalItems", "totalPages", "items"],
        "properties": {
            "page": {"type": "integer"},
            "perPage": {"type": "integer"},
            "totalItems": {"type": "integer"},
            "totalPages": {"type": "integer"},
            "items": {"type": "array", "items": record_ref},
        },
    }
    create_schema = {"type": "object", "required": list(required), "properties": create_props}
    patch_schema = {
        "type": "object",
        "properties": {name: create_props[name] for name in patch_names},
    }
    base = f"/api/collections/{c.name}/records"
    return {
        base: {
            "get": {
                "operationId": f"list_{c.name}",
                "parameters": list_params,
                "responses": {
                    "200": {"description": "A page of records", **_json(list_schema)},
                    **_error_responses(400, 401, 403),
                },
            },
            "post": {
                "operationId": f"create_{c.name}",
                "parameters": [fields_param],
                "requestBody": {"required": True, **_json(create_schema)},
                "responses": {
                    "200": {"description": "The created record", **_json(record_ref)},
                    **_error_responses(400, 401, 403, 404, 413),
                },
            },
        },
        base + "/{id}": {
            "parameters": [id_param],
            "get": {
                "operationId": f"get_{c.name}",
                "parameters": [fields_param],
                "responses": {
                    "200": {"description": "The record", **_json(record_ref)},
                    **_error_responses(401, 403, 404),
                },
            },
            "patch": {
                "operationId": f"update_{c.name}",
                "parameters": [fields_param],
                "requestBody": {"required": True, **_json(patch_schema)},
                "responses": {
                    "200": {"description": "The updated record", **_json(record_ref)},
                    **_error_responses(400, 401, 403, 404, 413),
                },
            },
            "delete": {
                "operationId": f"delete_{c.name}",
                "responses": {
                    "204": {"description": "Deleted"},
                    **_error_responses(400, 401, 403, 404),
                },
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the records API, health and stats endpoints."""
    paths: dict[str, Any] = {
        "/api/health": {
            "get": {
                "operationId": "health",
                "security": [],
                "responses": {"200": {"description": "Healthy"}},
            }
        },
        "/api/_stats": {
            "get": {
                "operationId": "stats",
                "responses": {
                    "200": {"description": "Request counts per method and collection"},
                    **_error_responses(401, 403),
                },
            }
        },
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["code", "message", "data"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "data": {"type": "object"},
            },
        }
    }
    for collection in COLLECTIONS.values():
        paths.update(_collection_paths(collection))
        schemas[collection.name] = _record_schema(collection)
    return {
        "openapi": "3.0.3",
        "info": {"title": "NATS Tower-compatible records API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Token"}},
        },
        "security": [{"token": []}],
    }
