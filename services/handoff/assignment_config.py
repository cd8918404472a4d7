"""The assignment file: teams, reps and territories (YAML, validated at start).

teams:
  - id: apac
    channel: C0APACSALES        # Slack channel of the team (escalations, alerts)
    reps:
      - {id: aiko, slack_id: U0AIKO, crm_owner_id: 0055g00000AAAA1, max_open: 25}
      - {id: ben, slack_id: U0BEN, available: false}
territories:                    # first match wins
  - name: japan-software
    team: apac
    country: [JP]
    industry: [software, saas]
    company_size: {min: 100}
default_team: apac              # leads no territory matches
"""

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from services.handoff.errors import AssignmentConfigError

Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,30}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rep(_Strict):
    id: Name
    name: Name | None = None
    slack_id: SlackUserId | None = Field(default=None, description="Mentioned in alerts.")
    crm_owner_id: Name | None = Field(default=None, description="Owner id in the CRM.")
    available: bool = True
    max_open: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="At most this many open leads; none: no limit."
    )


class Team(_Strict):
    id: Name
    channel: Name | None = Field(default=None, description="Slack channel id of the team.")
    reps: list[Rep] = Field(min_length=1)


class SizeRange(_Strict):
    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None

    def contains(self, size: int | None) -> bool:
        if size is None:
            return False
        return (self.min is None or size >= self.min) and (self.max is None or size <= self.max)


class Territory(_Strict):
    name: Name
    team: Name
    country: list[Name] | None = None
    region: list[Name] | None = None
    industry: list[Name] | None = None
    company_size: SizeRange | None = None


class AssignmentConfig(_Strict):
    teams: list[Team] = Field(min_length=1)
    territories: list[Territory] = Field(default_factory=list)
    default_team: Name | None = None

    @model_validator(mode="after")
    def _references_exist(self) -> "AssignmentConfig":
        team_ids = [team.id for team in self.teams]
        if len(set(team_ids)) != len(team_ids):
            raise ValueError("team ids must be unique")
        rep_ids = [rep.id for team in self.teams for rep in team.reps]
        if len(set(rep_ids)) != len(rep_ids):
            raise ValueError("rep ids must be unique across teams")
        for territory in self.territories:
            if territory.team not in team_ids:
                raise ValueError(
                    f"territory {territory.name!r} names unknown team {territory.team!r}"
                )
        if self.default_team is not None and self.default_team not in team_ids:
            raise ValueError(f"default_team {self.default_team!r} is not a team")
        return self

    def team(self, team_id: str) -> Team:
        return next(team for team in self.teams if team.id == team_id)

    def rep(self, rep_id: str) -> tuple[Team, Rep] | None:
        for team in self.teams:
            for rep in team.reps:
                if rep.id == rep_id:
                    return team, rep
        return None


def parse_assignment_config(text: str, source: str = "<assignment>") -> AssignmentConfig:
    """Validate an assignment file; errors name the file and the place in it."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AssignmentConfigError(f"{source}: not valid YAML: {exc}") from exc
    try:
        return AssignmentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise AssignmentConfigError(f"{source}: {problems}") from exc


def load_assignment_config(path: Path) -> AssignmentConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssignmentConfigError(f"cannot read the assignment file {path}: {exc}") from exc
    return parse_assignment_config(text, str(path))


DEFAULT_ASSIGNMENT = AssignmentConfig(teams=[Team(id="sales", reps=[Rep(id="unassigned-queue")])])
"""Embedded default: one team, one queue 'rep', so the pipeline runs with no file."""
