"""Render the OpenAPI schema as a Markdown API reference.

    python -m cocoa.api.docgen > docs/api.md

Generated, so the reference can never drift from the code; a test checks
that docs/api.md is current.
"""

from __future__ import annotations

import sys
from typing import Any

from cocoa.config import Settings

METHODS = ("get", "post", "put", "patch", "delete")


def render(schema: dict[str, Any]) -> str:
    lines = [f"# {schema['info']['title']} — API reference (v{schema['info']['version']})", "",
             "Generated from the OpenAPI schema (`/openapi.json`) by `python -m cocoa.api.docgen`.", "",
             schema["info"].get("description", ""), ""]
    for path, operations in schema["paths"].items():
        for method in METHODS:
            if method in operations:
                lines.extend(_operation(method, path, operations[method]))
    return "\n".join(lines).rstrip() + "\n"


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | required | description |", "|---|---|---|---|"]
        for p in params:
            desc = (p.get("description") or "").replace("\n", " ")
            lines.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {desc} |")
        lines.append("")
    body = op.get("requestBody", {}).get("content", {})
    if body:
        lines += [f"Request body: {', '.join(f'`{c}`' for c in body)}", ""]
    responses = op.get("responses", {})
    lines += ["Responses: " + ", ".join(
        f"`{code}` {r.get('description', '')}".strip() for code, r in responses.items()), ""]
    return lines


def main() -> None:
    from cocoa.api.app import create_app
    from cocoa.db.engine import make_engine

    app = create_app(Settings(), engine=make_engine("sqlite://"))
    sys.stdout.write(render(app.openapi()))


if __name__ == "__main__":
    main()
