from pathlib import Path

import pytest

from services.cli import build_parser, main

EXAMPLE = Path(__file__).parents[2] / "docs/examples/assignment.yaml"


def test_check_assignment_prints_what_the_file_means(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["handoff", "check-assignment", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "rep mei <@U0MEI> (unavailable)" in out
    assert "1. enterprise-any-country: company_size 1000.. -> team enterprise" in out
    assert out.rstrip().endswith("otherwise -> team inside-sales")


def test_check_assignment_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "a.yaml"
    bad.write_text("teams: [{id: t, reps: [{id: a}]}]\nterritories: [{name: x, team: nope}]")
    assert main(["handoff", "check-assignment", str(bad)]) == 1
    assert "territory 'x' names unknown team 'nope'" in capsys.readouterr().err


def test_handoff_runs_the_service_and_redrive_is_a_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["handoff"]).run.__name__ == "_run"
    assert parser.parse_args(["handoff", "redrive"]).run.__name__ == "_redrive"
