"""The configuration reference must name every setting the code reads."""

from pathlib import Path

from cocoa.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [f"COCOA_{name.upper()}" for name in Settings.model_fields if f"`COCOA_{name.upper()}`" not in text]
    assert missing == []


def test_api_reference_is_generated_from_the_current_schema() -> None:
    from cocoa.api.app import create_app
    from cocoa.api.docgen import render
    from cocoa.db.engine import make_engine

    app = create_app(Settings(), engine=make_engine("sqlite://"))
    expected = render(app.openapi())
    actual = (DOCS.parent / "api.md").read_text()
    assert actual == expected, "docs/api.md is stale: run `python -m cocoa.api.docgen > docs/api.md`"
