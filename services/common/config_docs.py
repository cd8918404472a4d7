"""docs/configuration.md: the one table of HOTLEAD_* settings, generated from
the Settings classes so it cannot drift from the code.

`python -m services.common.config_docs` (or `make docs`) rewrites it; a test
fails when the committed file differs.
"""

import sys
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from services.common.kafka_settings import KafkaSettings
from services.handoff.settings import HandoffSettings
from services.ingest.settings import IngestSettings
from services.scorer.settings import ScorerSettings

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

SETTINGS_CLASSES: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("Kafka and topics", KafkaSettings),
    ("Ingest (hotlead ingest)", IngestSettings),
    ("Hand-off service (hotlead handoff)", HandoffSettings),
    ("Scorer (hotlead scorer)", ScorerSettings),
)
"""Every Settings class, in the order the document lists them. A service adds its own here."""

HEADER = """# Configuration

Every setting is an environment variable with the prefix `HOTLEAD_`, read
once when a process starts. This file is generated from the code
(`make docs`); edit the field descriptions there, not here.
"""


def _default(settings_class: type[BaseSettings], name: str) -> str:
    field = settings_class.model_fields[name]
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if value is None:
        return "(unset)"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _own_fields(settings_class: type[BaseSettings]) -> list[tuple[str, FieldInfo]]:
    """The fields a class declares itself: a service's Settings subclass of
    KafkaSettings lists its own settings, not the Kafka ones again."""
    inherited: set[str] = set()
    for base in settings_class.__mro__[1:]:
        if isinstance(base, type) and issubclass(base, BaseSettings) and base is not BaseSettings:
            inherited |= set(base.model_fields)
    return [(n, f) for n, f in settings_class.model_fields.items() if n not in inherited]


def render() -> str:
    parts = [HEADER]
    for title, settings_class in SETTINGS_CLASSES:
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        parts.append(f"## {title}\n\n| variable | default | meaning |\n| --- | --- | --- |")
        for name, field in _own_fields(settings_class):
            variable = f"{prefix}{name}".upper()
            description = (field.description or "").replace("|", "\\|")
            parts.append(f"| `{variable}` | {_default(settings_class, name)} | {description} |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    DOC_PATH.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC_PATH}\n")
