"""Render the OpenAPI schema as a Markdown API reference.

    python -m cocoa.api.docgen > docs/api.md

Generated, so the reference can never drift from the code; a test checks
that docs/api.md is current. Each operation shows its ``operationId`` (the
name a generated client gives it), its parameters, every field of its
request body (multipart and JSON alike, resolved from the components), its
response model and what each status means.
"""

from __future__ import annotations

import sys
from typing import Any

from cocoa.config import Settings

METHODS = ("get", "post", "put", "patch", "delete")

STATUSES = (
    ("`400`", "The request cannot be read: malformed multipart or JSON, a body that is not UTF-8, "
              "too many parts, or the `file` part missing."),
    ("`401` / `403`", "No valid token or session / the role does not allow it (job-creating and "
                      "control endpoints are admin-only)."),
    ("`404` / `409`", "No such job or token / the job's state does not allow the action."),
    ("`413` / `415`", "The upload or body is over the limit / the body has the wrong content type."),
    ("`422`", "The request was read, but a value is invalid: an unknown or misspelt field, a value "
              "outside its choices, a mapping that names no column, a file without the columns or "
              "geometry the job needs, a selection with nothing (or too much) to do. `details` lists "
              "the problems (`location`, `message`, `type`) where there are several."),
    ("`429` / `503`", "Too many failed logins / the database is busy or unavailable: retry after "
                      "`Retry-After` seconds."),
)
"""The 400-vs-422 rule (issue 21): 400 only when the request cannot be read."""

STATUS_RULES = "\n".join([
    "## Status codes", "",
    'Every error has the body `{"error": {"code", "message", "details"}}`; `message` says what to fix '
    "and `code` is stable for programs.", "",
    "| status | when |", "|---|---|", *(f"| {status} | {when} |" for status, when in STATUSES), "",
    "Every job-creating endpoint (the imports, geocoding, retry) answers `202 Accepted` with "
    "`JobAccepted` (`{job_id, status: \"pending\", job}`) and a `Location: /api/v1/jobs/{id}` header.", "",
])


def render(schema: dict[str, Any]) -> str:
    lines = [f"# {schema['info']['title']} — API reference (v{schema['info']['version']})", "",
             "Generated from the OpenAPI schema (`/openapi.json`) by `python -m cocoa.api.docgen`.", "",
             schema["info"].get("description", ""), "", STATUS_RULES]
    components = schema.get("components", {}).get("schemas", {})
    for path, operations in schema["paths"].items():
        for method in METHODS:
            if method in operations:
                lines.extend(_operation(method, path, operations[method], components))
    return "\n".join(lines).rstrip() + "\n"


def _operation(method: str, path: str, op: dict[str, Any], components: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}** (operation `{op.get('operationId', '')}`)", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | required | description |", "|---|---|---|---|"]
        for p in params:
            desc = _cell(p.get("description") or "")
            lines.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {desc} |")
        lines.append("")
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        lines += _body(media, content.get("schema", {}), components)
    lines += _responses(op.get("responses", {}))
    return lines


def _body(media: str, schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    """The request body's fields, one row each (multipart fields or JSON members)."""
    resolved = _resolve(schema, components)
    properties = resolved.get("properties", {})
    lines = [f"Request body (`{media}`):", ""]
    if not properties:
        return lines
    required = set(resolved.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in properties.items():
        prop = _resolve(prop, components)
        desc = prop.get("description") or ""
        if "default" in prop and prop["default"] is not None:
            desc = f"{desc} Default `{prop['default']}`.".strip()
        lines.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} | {_cell(desc)} |")
    return [*lines, ""]


def _responses(responses: dict[str, Any]) -> list[str]:
    lines = ["| status | body | meaning |", "|---|---|---|"]
    for code, response in responses.items():
        content = response.get("content", {})
        bodies = []
        for media, item in content.items():
            ref = item.get("schema", {}).get("$ref", "")
            bodies.append(f"`{ref.rsplit('/', 1)[-1]}`" if ref else f"`{media}`")
        lines.append(f"| `{code}` | {', '.join(bodies) or '-'} | {_cell(response.get('description', ''))} |")
    return [*lines, ""]


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return dict(components.get(ref.rsplit("/", 1)[-1], {}))
    return schema


def _type(prop: dict[str, Any]) -> str:
    """A short type name: ``string (binary)``, ``integer or null``, ``one of a, b``."""
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return f"`{prop['$ref'].rsplit('/', 1)[-1]}`"
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    fmt = prop.get("format")
    return f"{kind} ({fmt})" if fmt else kind


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return text.strip().replace("\n", " ").replace("|", "\\|")


def main() -> None:
    from cocoa.api.app import create_app
    from cocoa.db.engine import MEMORY_URL, make_engine

    app = create_app(Settings(), engine=make_engine(MEMORY_URL))
    sys.stdout.write(render(app.openapi()))


if __name__ == "__main__":
    main()
