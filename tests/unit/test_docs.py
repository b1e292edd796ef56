"""The configuration reference must name every setting the code reads."""

from pathlib import Path

from cocoa.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    missing = [f"COCOA_{name.upper()}" for name in Settings.model_fields if f"`COCOA_{name.upper()}`" not in text]
    assert missing == []
