"""The committed JSON Schema files are what the models generate, and every
example is valid against both the model and the JSON Schema."""

import json
from pathlib import Path

import jsonschema
import pytest

from schemas import decode_event, encode_event
from schemas.event_types import EventType
from schemas.jsonschema import EXAMPLES_DIR, JSON_DIR, generate, schema_file_name

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


def test_committed_schemas_match_the_models() -> None:
    generated = generate()
    committed = {path.name: path.read_text(encoding="utf-8") for path in JSON_DIR.glob("*.json")}
    stale = sorted(set(committed) - set(generated))
    missing = sorted(set(generated) - set(committed))
    changed = sorted(
        name for name in generated if committed.get(name, generated[name]) != generated[name]
    )
    assert (stale, missing, changed) == ([], [], []), (
        "schemas/json/ is out of date with the models: run 'make schemas' and commit the result"
    )


def test_every_event_type_has_one_example() -> None:
    assert sorted(path.stem for path in EXAMPLES) == sorted(t.short for t in EventType)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_valid_against_its_json_schema(path: Path) -> None:
    example = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads((JSON_DIR / schema_file_name(EventType(example["type"]))).read_text())
    jsonschema.Draft202012Validator(schema).validate(example)
    union = json.loads((JSON_DIR / "any-event.json").read_text())
    jsonschema.Draft202012Validator(union).validate(example)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trips_through_record_bytes_unchanged(path: Path) -> None:
    original = json.loads(path.read_text(encoding="utf-8"))
    event = decode_event(path.read_bytes())
    assert event.type.short == path.stem
    record = encode_event(event)
    assert json.loads(record) == original
    assert decode_event(record) == event
    assert encode_event(decode_event(record)) == record


def test_json_schema_rejects_what_the_model_rejects() -> None:
    example = json.loads((EXAMPLES_DIR / "email.clicked.json").read_text())
    del example["data"]["url"]
    schema = json.loads((JSON_DIR / "email.clicked.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match="'url' is a required property"):
        jsonschema.Draft202012Validator(schema).validate(example)
