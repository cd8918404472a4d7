from services.common.config_docs import DOC_PATH, render


def test_configuration_doc_is_generated_from_the_settings() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run 'make docs' and commit it"
    )


def test_every_setting_is_documented() -> None:
    text = render()
    assert "| `HOTLEAD_KAFKA_BOOTSTRAP` | `127.0.0.1:9092` |" in text
    assert "| `HOTLEAD_EVENTS_RETENTION_MS` | `-1` |" in text
    assert "| |" not in text.replace("| --- |", "")
