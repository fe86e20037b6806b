"""Check recorded HTTP requests against a provider's published description.

A strict reading of the JSON Schema that OpenAPI uses: objects are closed (a field the
description doesn't name is an error: the provider ignores or refuses it), and `integer` means
a JSON integer, never `60.0` (jsonschema would accept 60.0 as an integer, which is what this
check is for). Each problem names the request and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

HERE = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / name).read_text())
    return data


@dataclass(frozen=True)
class Sent:
    method: str
    path: str  # without the API's base path
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def sent(request: httpx.Request, base_path: str) -> Sent:
    url = urlsplit(str(request.url))
    path = url.path.removeprefix(base_path) or "/"
    return Sent(request.method, path, parse_qsl(url.query, keep_blank_values=True), dict(request.headers),
                request.content)


def route(templates: list[str], path: str) -> str | None:
    """The template that matches `path`, preferring literal segments over parameters."""
    matches = [t for t in templates if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", t), path)]
    return min(matches, key=lambda t: t.count("{"), default=None)


class Schema:
    """Validates values against schemas of one document (resolving its `$ref`s)."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in str(schema["$ref"]).removeprefix("#/").split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def errors(self, value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
        schema = self.resolve(schema)
        for combinator in ("oneOf", "anyOf"):
            if combinator in schema:
                options = [self.errors(value, s, where) for s in schema[combinator]]
                return [] if any(not o for o in options) else min(options, key=len)
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            return self.errors(value, merged, where)
        kind = schema.get("type")
        if kind == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
            return [f"{where}: {value!r} is not an integer"]
        if kind == "number" and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return [f"{where}: {value!r} is not a number"]
        if kind == "string" and not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if kind == "boolean" and not isinstance(value, bool):
            return [f"{where}: {value!r} is not a boolean"]
        out: list[str] = []
        if "enum" in schema and value not in schema["enum"]:
            out.append(f"{where}: {value!r} is not one of {schema['enum']}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{where}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{where}: {value} > maximum {schema['maximum']}")
        if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if kind == "array" or "items" in schema:
            if not isinstance(value, list):
                return [f"{where}: {value!r} is not an array"]
            for index, item in enumerate(value):
                out += self.errors(item, schema.get("items", {}), f"{where}[{index}]")
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                return [f"{where}: {value!r} is not an object"]
            properties = schema.get("properties", {})
            out += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if key in properties:
                    out += self.errors(item, properties[key], f"{where}.{key}")
                elif isinstance(extra, Mapping):
                    out += self.errors(item, extra, f"{where}.{key}")
                elif properties or extra is False:
                    out.append(f"{where}.{key}: not in the description")
        return out


def check_openapi(document: Mapping[str, Any], request: Sent) -> list[str]:
    """Problems with `request` under an OpenAPI 3 description (paths relative to its server)."""
    paths = document["paths"]
    template = route(list(paths), request.path)
    if template is None:
        return [f"{request}: no such route in the description"]
    item = paths[template]
    operation = item.get(request.method.lower())
    if operation is None:
        return [f"{request}: {template} has no {request.method}"]
    schema = Schema(document)
    parameters = [schema.resolve(p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]]
    query = {p["name"]: p for p in parameters if p.get("in") == "query"}
    out = [f"{request}: query parameter {name!r} is not in the description"
           for name, _ in request.query if name not in query]
    sent_names = {name for name, _ in request.query}
    out += [f"{request}: required query parameter {name!r} missing"
            for name, p in query.items() if p.get("required") and name not in sent_names]
    body = operation.get("requestBody")
    if body is not None:
        content = body.get("content", {}).get("application/json")
        if content is None:
            out.append(f"{request}: the description takes no JSON body")
        elif request.body:
            out += schema.errors(request.json(), content["schema"], f"{request} body")
        elif body.get("required"):
            out.append(f"{request}: a body is required")
    elif request.body:
        out.append(f"{request}: sends a body the description doesn't take")
    return out


def check_recorded(contract: Mapping[str, Any], request: Sent) -> list[str]:
    """Problems with `request` under a contract recorded from the provider's documentation."""
    operations = contract["operations"]
    keys = [k.split(" ", 1)[1] for k in operations if k.startswith(request.method + " ")]
    template = route(keys, request.path)
    if template is None:
        return [f"{request}: not a documented call"]
    operation = operations[f"{request.method} {template}"]
    out: list[str] = []
    for name, value in request.query:
        spec = operation.get("query", {}).get(name)
        if spec is None:
            out.append(f"{request}: query parameter {name!r} is not documented")
        elif spec["type"] == "integer" and not re.fullmatch(r"-?\d+", value):
            out.append(f"{request}: query parameter {name}={value!r} is not an integer")
        elif "enum" in spec and value not in spec["enum"]:
            out.append(f"{request}: query parameter {name}={value!r} is not one of {spec['enum']}")
    if "form" in operation:
        fields = operation["form"]
        sent_form = request.form() if request.body else []
        for name, value in sent_form:
            spec = fields.get(name)
            if spec is None:
                out.append(f"{request}: form field {name!r} is not documented")
            elif spec["type"] == "boolean" and value not in ("true", "false"):
                out.append(f"{request}: form field {name}={value!r} is not true/false")
        names = [n for n, _ in sent_form]
        out += [f"{request}: form field {n!r} sent twice" for n in set(names)
                if names.count(n) > 1 and not fields.get(n, {}).get("repeated")]
        out += [f"{request}: form field {n!r} required" for n, s in fields.items()
                if s.get("required") and n not in names]
    if "body" in operation:
        out += Schema(operation).errors(request.json(), operation["body"], f"{request} body")
    elif request.body and "form" not in operation:
        out.append(f"{request}: sends a body the documentation doesn't take")
    if operation.get("idempotency_key") and not request.headers.get("idempotency-key"):
        out.append(f"{request}: no Idempotency-Key (a retry after a timeout would do it twice)")
    return out


def check_fields(kinds: Mapping[str, Any], request: Sent) -> list[str]:
    """BetterStack: the body's attributes against the Terraform provider's names and types."""
    match = re.fullmatch(r"/(monitors|heartbeats|status-pages)(?:/[^/]+)?", request.path)
    if match is None:
        return [f"{request}: not a BetterStack Uptime collection"]
    if not request.body:
        return []
    fields = kinds[match.group(1)]
    schema = {"type": "object", "properties": fields, "additionalProperties": False}
    return Schema({}).errors(request.json(), schema, f"{request} body")
