"""JSON Schema files for every event type, generated from the models.

`python -m schemas.jsonschema` rewrites schemas/json/; the tests fail when the
committed files differ from what the models generate.
"""

import json
import sys
from pathlib import Path

from schemas.event_types import EventType
from schemas.events import ANY_EVENT, EVENT_MODELS

JSON_DIR = Path(__file__).parent / "json"
EXAMPLES_DIR = Path(__file__).parent / "examples"
SCHEMA_ID_BASE = "urn:hotlead:schema:"


def schema_file_name(event_type: EventType) -> str:
    return f"{event_type.short}.json"


def _render(schema: dict[str, object], name: str) -> str:
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID_BASE + name,
        **schema,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def generate() -> dict[str, str]:
    """File name -> JSON Schema text, for each event type and for the union."""
    files = {
        schema_file_name(event_type): _render(
            model.model_json_schema(), schema_file_name(event_type)
        )
        for event_type, model in EVENT_MODELS.items()
    }
    files["any-event.json"] = _render(ANY_EVENT.json_schema(), "any-event.json")
    return files


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Rewrite the schema files in `directory`, removing stale ones."""
    directory.mkdir(exist_ok=True)
    files = generate()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"wrote {path}\n")
