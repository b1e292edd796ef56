"""The API's JSON encoder for read endpoints (orjson with a fallback)."""

from __future__ import annotations

import json

from cocoa.api.jobs_routes import JSONBody


def test_json_body_encodes_what_the_standard_library_would() -> None:
    content = {"name": "MUÑOZ", "ratio": 0.5, "nested": [{"n": None}], "big": 2**70}
    body = JSONBody(content)
    assert body.media_type == "application/json"
    assert json.loads(body.body) == content  # the integer beyond 64 bits went through the fallback


def test_json_body_keeps_text_as_utf8() -> None:
    assert JSONBody({"x": "<script>ñ</script>"}).body == '{"x":"<script>ñ</script>"}'.encode()
