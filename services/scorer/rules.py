"""The rules file: a YAML document validated into immutable models.

`load_rules(path)` reads and validates a file and stamps it with a version
(`<name>@<first 12 hex of sha256(content)>`). Every validation error names
the rule (by its `name`) and the field, e.g.
`engagement rule 'pricing_page': url: not a valid regular expression`.
The meaning of every field is documented in docs/rules.md.
"""

import hashlib
import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.data import CrmStatus
from schemas.event_types import INPUT_TYPES, EventType
from services.scorer.errors import RulesError

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def _parse_duration(value: Any) -> Any:
    """`14d`, `12h`, `30m`, `45s` or a number of seconds -> seconds (float)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration; write e.g. 14d, 12h, 30m or 45s")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(_parse_duration), Field(gt=0)]
"""A duration in seconds, written in the file as `14d`, `12h`, `30m`, `45s`."""


def _compile(value: str | None) -> re.Pattern[str] | None:
    return None if value is None else re.compile(value, re.IGNORECASE)


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FitRule(Strict):
    """Points from a lead attribute: exactly one of equals / in / range / pattern."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    field: str = Field(description="A LeadAttributes field, or custom.<key>.")
    points: float
    group: str | None = None
    equals: str | int | float | bool | None = None
    in_: list[str | int | float] | None = Field(default=None, alias="in")
    range: tuple[float | None, float | None] | None = Field(
        default=None, description="[min, max): min inclusive, max exclusive; null = open."
    )
    pattern: str | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        from schemas.data import LeadAttributes

        if value.startswith("custom."):
            return value
        if value not in LeadAttributes.model_fields or value == "custom":
            known = ", ".join(n for n in LeadAttributes.model_fields if n != "custom")
            raise ValueError(f"unknown attribute {value!r}; known: {known}, custom.<key>")
        return value

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str | None) -> str | None:
        return _valid_regex(value)

    @model_validator(mode="after")
    def _one_condition(self) -> "FitRule":
        given = [
            c
            for c, v in (
                ("equals", self.equals),
                ("in", self.in_),
                ("range", self.range),
                ("pattern", self.pattern),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of equals, in, range, pattern (got {', '.join(given) or 'none'})"
            )
        return self

    def matches(self, value: object) -> bool:
        if value is None:
            return False
        if self.equals is not None:
            if isinstance(value, str) and isinstance(self.equals, str):
                return value.casefold() == self.equals.casefold()
            return value == self.equals
        if self.in_ is not None:
            if isinstance(value, str):
                return value.casefold() in {str(v).casefold() for v in self.in_}
            return value in self.in_
        if self.range is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            low, high = self.range
            return (low is None or value >= low) and (high is None or value < high)
        assert self.pattern is not None  # noqa: S101 - guaranteed by _one_condition
        return regex(self.pattern).search(str(value)) is not None


def _valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def regex(pattern: str) -> re.Pattern[str]:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        compiled = _REGEX_CACHE[pattern] = re.compile(pattern, re.IGNORECASE)
    return compiled


class EventMatch(Strict):
    """Which events a rule or trigger looks at: the types, and regular expressions
    (searched, case-insensitive) that the named event fields must all match."""

    event: list[str] = Field(min_length=1)
    url: str | None = None
    asset: str | None = Field(default=None, description="Matched against the asset id.")
    asset_type: str | None = None
    campaign: str | None = None
    form: str | None = Field(default=None, description="Matched against the form id.")
    form_type: str | None = None
    status: str | None = Field(default=None, description="CRM status (crm.status_changed).")
    any: str | None = Field(
        default=None, description="Matched against the URL, asset id, asset type and title."
    )

    @field_validator("event", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("event")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        out = []
        for name in value:
            event_type = EventType.from_name(name)
            if event_type not in INPUT_TYPES or event_type is EventType.LEAD_UPDATED:
                raise ValueError(f"{name!r} is not a behaviour event type")
            out.append(event_type.value)
        return out

    @field_validator("url", "asset", "asset_type", "campaign", "form", "form_type", "status", "any")
    @classmethod
    def _valid_patterns(cls, value: str | None) -> str | None:
        return _valid_regex(value)

    def field_patterns(self) -> list[tuple[str, str]]:
        return [
            (name, pattern)
            for name in (
                "url",
                "asset",
                "asset_type",
                "campaign",
                "form",
                "form_type",
                "status",
                "any",
            )
            if (pattern := getattr(self, name)) is not None
        ]


class RepeatKind(StrEnum):
    EVERY = "every"
    ONCE_PER_LEAD = "once_per_lead"
    ONCE_PER_ASSET = "once_per_asset"
    WINDOW = "window"


class Repeat(Strict):
    """How often a rule scores: every time, once per lead, once per asset (the
    asset id, else the URL, else the campaign or form), or at most N per window."""

    kind: RepeatKind = RepeatKind.EVERY
    at_most: int | None = Field(default=None, ge=1)
    window: Seconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value and "at_most" in value:
            return {"kind": "window", **value}
        return value

    @model_validator(mode="after")
    def _window_needs_both(self) -> "Repeat":
        if self.kind is RepeatKind.WINDOW and (self.at_most is None or self.window is None):
            raise ValueError(
                "a window repeat needs at_most and window, e.g. {at_most: 3, window: 7d}"
            )
        if self.kind is not RepeatKind.WINDOW and (self.at_most or self.window):
            raise ValueError(f"at_most/window only apply to a window repeat, not {self.kind}")
        return self


class EngagementRule(EventMatch):
    """Points for a behaviour (negative points allowed)."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    points: float
    group: str | None = None
    repeat: Repeat = Repeat()
    cap: float | None = Field(
        default=None, gt=0, description="This rule's points (after decay) are at most this."
    )
    decay: bool = Field(
        default=True,
        description="false: the points never decay. Negative points never decay, so that "
        "time passing can only lower a score.",
    )

    @model_validator(mode="before")
    @classmethod
    def _negative_points_keep(cls, value: Any) -> Any:
        if isinstance(value, dict) and "decay" not in value:
            points = value.get("points")
            if isinstance(points, int | float) and points < 0:
                return {**value, "decay": False}
        return value

    @model_validator(mode="after")
    def _no_decaying_penalty(self) -> "EngagementRule":
        if self.decay and self.points < 0:
            raise ValueError("negative points never decay: remove `decay: true`")
        return self


class Trigger(EventMatch):
    """A special behaviour that hands the lead off below the threshold."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    count: int = Field(default=1, ge=1)
    distinct: bool = Field(default=False, description="Count distinct assets/URLs only.")
    window: Seconds | None = None
    min_score: float = 0.0
    detail: str | None = Field(default=None, description="Text for the hand-off reason.")


class Group(Strict):
    cap: float | None = Field(default=None, description="At most this many points in total.")
    exclusive: bool = Field(
        default=False, description="Fit groups: only the first matching rule (file order) counts."
    )


class CrmAction(StrEnum):
    HOLD = "hold"
    RECYCLE = "recycle"
    CLOSE = "close"


class CrmEffect(Strict):
    """What a CRM status does: hold (sales owns it, no new hand-off), recycle
    (re-arm: a new hand-off once it qualifies again), close (no more hand-offs
    until a later recycle). Optionally resets the engagement score."""

    action: CrmAction
    reset_engagement: bool = False


class Segments(Strict):
    mid: float = 50
    high: float = 70

    @model_validator(mode="after")
    def _ordered(self) -> "Segments":
        if self.mid > self.high:
            raise ValueError("mid must not be above high")
        return self


class Handoff(Strict):
    threshold: float = 70
    rearm_below: float = Field(
        default=50, description="Re-armed once the score falls below this (decay included)."
    )
    cooldown: Seconds | None = Field(default=None, description="No new hand-off within this.")

    @model_validator(mode="after")
    def _rearm_not_above(self) -> "Handoff":
        if self.rearm_below > self.threshold:
            raise ValueError("rearm_below must not be above threshold")
        return self


class Limits(Strict):
    cap: float | None = Field(default=None, description="Highest total score.")
    floor: float | None = Field(default=0, description="Lowest total score.")

    @model_validator(mode="after")
    def _floor_below_cap(self) -> "Limits":
        if self.cap is not None and self.floor is not None and self.floor > self.cap:
            raise ValueError("floor must not be above cap")
        return self


class Dedupe(Strict):
    window: Seconds = Field(default=48 * 3600.0, description="Event ids kept this long (>= 24h).")
    max_ids: int = Field(default=5000, ge=100, description="And at most this many per lead.")

    @field_validator("window")
    @classmethod
    def _at_least_a_day(cls, value: float) -> float:
        if value < 24 * 3600:
            raise ValueError("keep event ids for at least 24h")
        return value


class Rules(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    half_life: Seconds | None = Field(
        default=None, description="Engagement half-life; none: no decay."
    )
    segments: Segments = Segments()
    handoff: Handoff = Handoff()
    total: Limits = Limits()
    groups: dict[str, Group] = Field(default_factory=dict)
    fit: list[FitRule] = Field(default_factory=list)
    engagement: list[EngagementRule] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    crm: dict[CrmStatus, CrmEffect] = Field(default_factory=dict)
    dedupe: Dedupe = Dedupe()
    history: int = Field(default=50, ge=1, le=1000, description="Score history entries kept.")
    version: str = Field(default="", description="Set by load_rules: name@content-hash.")

    @model_validator(mode="after")
    def _names_and_groups(self) -> "Rules":
        named: list[list[FitRule | EngagementRule | Trigger]] = [
            [*self.fit, *self.engagement],
            list(self.triggers),
        ]
        for items in named:
            seen: set[str] = set()
            for item in items:
                kind = (
                    "fit rule"
                    if isinstance(item, FitRule)
                    else "trigger"
                    if isinstance(item, Trigger)
                    else "engagement rule"
                )
                if item.name in seen:
                    raise ValueError(f"{kind} {item.name!r}: the name is used twice")
                seen.add(item.name)
                group = getattr(item, "group", None)
                if group is not None and group not in self.groups:
                    raise ValueError(
                        f"{kind} {item.name!r}: group {group!r} is not declared under groups"
                    )
        return self


def _describe(exc: ValidationError, document: dict[str, Any]) -> list[str]:
    """Errors that name the rule and the field: `engagement rule 'x': points: ...`."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        where = ""
        if (
            len(loc) >= 2
            and loc[0] in ("fit", "engagement", "triggers")
            and isinstance(loc[1], int)
        ):
            items = document.get(str(loc[0])) or []
            name = (
                items[loc[1]].get("name")
                if loc[1] < len(items) and isinstance(items[loc[1]], dict)
                else None
            )
            kind = {"fit": "fit rule", "engagement": "engagement rule", "triggers": "trigger"}[
                str(loc[0])
            ]
            where = f"{kind} {name!r}" if name else f"{kind} #{loc[1] + 1}"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc)
        message = str(err["msg"]).removeprefix("Value error, ")
        if where and field:
            lines.append(f"{where}: {field}: {message}")
        elif where or field:
            lines.append(f"{where or field}: {message}")
        else:
            lines.append(message)
    return lines


def parse_rules(text: str, *, source: str = "<rules>") -> Rules:
    """Validate a rules document; raises RulesError listing every problem."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(document, dict):
        raise RulesError(source, ["the file must be a mapping with at least `name:`"])
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        rules = Rules.model_validate(document)
    except ValidationError as exc:
        raise RulesError(source, _describe(exc, document)) from None
    return rules.model_copy(update={"version": f"{rules.name}@{digest}"})


def load_rules(path: Path | str | None = None) -> Rules:
    """Read and validate a rules file (the default rules when `path` is None)."""
    file = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(file), [f"cannot read it: {exc.strerror}"]) from None
    return parse_rules(text, source=str(file))


Kind = Literal["fit", "engagement", "trigger"]
