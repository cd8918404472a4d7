"""`hotlead rules check FILE`."""

from pathlib import Path

import pytest

from services.cli import main
from services.scorer.rules import DEFAULT_RULES_PATH


def test_rules_check_prints_what_the_file_means(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(DEFAULT_RULES_PATH)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rules default@")
    assert "segments: low < 50 <= mid < 70 <= high" in out
    assert "title_manager [role]: +20 if job_title matches /部長" in out
    assert "case_studies: 3 distinct x asset.downloaded or page.viewed" in out
    assert "rejected: recycle, engagement reset to 0" in out


def test_rules_check_names_the_rule_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nengagement:\n  - {name: oops, event: page.viewed, points: high}\n")
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "engagement rule 'oops': points: Input should be a valid number" in err
