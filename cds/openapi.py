"""The service's OpenAPI document, with request and response schemas from the wire models.

The routes read their bodies themselves (to answer 413/415/400 with OperationOutcomes), so
FastAPI cannot infer the bodies; this fills them in from the same pydantic models that validate
them, for integrators and for schema-driven fuzzing.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from cds import schemas

REF = "#/components/schemas/{model}"
MODELS: list[type[Any]] = [
    schemas.HookRequest,
    schemas.FeedbackRequest,
    schemas.CDSResponse,
    schemas.Discovery,
    schemas.OperationOutcome,
]


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Invalid request",
        401: "Authentication failed",
        404: "Unknown service",
        412: "Data the rules need could not be prefetched or fetched",
        413: "Body too large",
        415: "Not JSON",
        422: "Feedback for a card not issued to this client by this service, or a suggestion"
        " the card did not have; nothing of the post is stored",
    }
    return {
        str(c): {
            "description": words[c],
            "content": {
                "application/fhir+json": {
                    "schema": {"$ref": "#/components/schemas/OperationOutcome"}
                }
            },
        }
        for c in codes
    }


def install(app: FastAPI, service_ids: list[str]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            routes=app.routes,
            description="CDS Hooks 2.0.1 service (see README.md).",
        )
        _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.get("$defs", {}))
        paths = doc["paths"]
        for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback"):
            for param in paths[path]["post"]["parameters"]:
                if param["name"] == "service_id":
                    param["schema"] = {"type": "string", "enum": service_ids}
        paths["/cds-services"]["get"]["responses"] = {
            "200": {"description": "Discovery", "content": _json("Discovery")},
            **_errors(401),
        }
        call = paths["/cds-services/{service_id}"]["post"]
        call["requestBody"] = {"required": True, "content": _json("HookRequest")}
        call["responses"] = {
            "200": {"description": "Cards", "content": _json("CDSResponse")},
            **_errors(400, 401, 404, 412, 413, 415),
        }
        feedback = paths["/cds-services/{service_id}/feedback"]["post"]
        feedback["requestBody"] = {"required": True, "content": _json("FeedbackRequest")}
        feedback["responses"] = {
            "200": {
                "description": "Stored (idempotent)",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "received": {"type": "integer"},
                                "stored": {"type": "integer"},
                            },
                            "required": ["received", "stored"],
                        }
                    }
                },
            },
            **_errors(400, 401, 404, 413, 415, 422),
        }
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
