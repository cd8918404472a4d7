"""Who gets a hot lead: territory, then round robin inside the team (pure).

`assign(config, state, lead_id, lead)` returns the decision and the new
state; nothing here touches Kafka or a clock. The state is what the
compacted topic hotlead.assignments.v1 holds: per rep a logical "last
assigned" tick and the number of open leads, per lead its owner.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from schemas.data import CrmStatus, LeadAttributes
from services.handoff.assignment_config import AssignmentConfig, Rep, Team, Territory


@dataclass(frozen=True, slots=True)
class RepState:
    last_assigned: int = 0
    """Logical tick of the rep's last assignment; 0 = never. Least first wins."""
    open_leads: int = 0


@dataclass(frozen=True, slots=True)
class LeadOwner:
    rep_id: str
    team_id: str
    recycled: bool = False
    """Sales rejected or lost the lead: the next hand-off may go to someone else."""
    open: bool = True
    """Counts against the rep's capacity until sales closes it (rejected, lost, won)."""


@dataclass(frozen=True, slots=True)
class AssignmentState:
    reps: Mapping[str, RepState] = field(default_factory=dict)
    owners: Mapping[str, LeadOwner] = field(default_factory=dict)

    @property
    def tick(self) -> int:
        return max((rep.last_assigned for rep in self.reps.values()), default=0)

    def rep(self, rep_id: str) -> RepState:
        return self.reps.get(rep_id, RepState())


class AssignmentReason(StrEnum):
    KEPT_OWNER = "kept_owner"
    ROUND_ROBIN = "round_robin"
    NO_REP_AVAILABLE = "no_rep_available"


@dataclass(frozen=True, slots=True)
class Assignment:
    team_id: str
    rep_id: str | None
    reason: AssignmentReason
    territory: str | None
    skipped: tuple[str, ...] = ()
    """Reps passed over, with why: `ben:unavailable`, `aiko:at_capacity`."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """What an operation changed, so the shell writes only those keys."""

    reps: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()


def match_territory(config: AssignmentConfig, lead: LeadAttributes) -> Territory | None:
    for territory in config.territories:
        if _matches(territory, lead):
            return territory
    return None


def _in(values: list[str] | None, value: str | None) -> bool:
    if values is None:
        return True
    return value is not None and value.casefold() in {v.casefold() for v in values}


def _matches(territory: Territory, lead: LeadAttributes) -> bool:
    if not _in(territory.country, lead.country):
        return False
    if not _in(territory.region, lead.region):
        return False
    if not _in(territory.industry, lead.industry):
        return False
    return territory.company_size is None or territory.company_size.contains(lead.company_size)


def team_for(config: AssignmentConfig, lead: LeadAttributes) -> tuple[Team, str | None]:
    territory = match_territory(config, lead)
    if territory is not None:
        return config.team(territory.team), territory.name
    return config.team(config.default_team or config.teams[0].id), None


def _why_skipped(rep: Rep, state: RepState) -> str | None:
    if not rep.available:
        return "unavailable"
    if rep.max_open is not None and state.open_leads >= rep.max_open:
        return "at_capacity"
    return None


def assign(
    config: AssignmentConfig, state: AssignmentState, lead_id: str, lead: LeadAttributes
) -> tuple[Assignment, AssignmentState, StateChange]:
    owner = state.owners.get(lead_id)
    if owner is not None and not owner.recycled and config.rep(owner.rep_id) is not None:
        kept = Assignment(owner.team_id, owner.rep_id, AssignmentReason.KEPT_OWNER, None)
        if owner.open:
            return kept, state, StateChange()
        reps = dict(state.reps)
        current = state.rep(owner.rep_id)
        reps[owner.rep_id] = replace(current, open_leads=current.open_leads + 1)
        owners = {**state.owners, lead_id: replace(owner, open=True)}
        return kept, AssignmentState(reps, owners), StateChange((owner.rep_id,), (lead_id,))
    team, territory = team_for(config, lead)
    skipped: list[str] = []
    candidates: list[tuple[int, int, Rep]] = []
    for position, rep in enumerate(team.reps):
        why = _why_skipped(rep, state.rep(rep.id))
        if why is None:
            candidates.append((state.rep(rep.id).last_assigned, position, rep))
        else:
            skipped.append(f"{rep.id}:{why}")
    if not candidates:
        decision = Assignment(
            team.id, None, AssignmentReason.NO_REP_AVAILABLE, territory, tuple(skipped)
        )
        return decision, state, StateChange()
    _, _, chosen = min(candidates, key=lambda c: (c[0], c[1]))
    chosen_state = state.rep(chosen.id)
    reps = dict(state.reps)
    reps[chosen.id] = RepState(last_assigned=state.tick + 1, open_leads=chosen_state.open_leads + 1)
    changed_reps = [chosen.id]
    if owner is not None and owner.open and owner.rep_id != chosen.id and owner.rep_id in reps:
        previous = reps[owner.rep_id]
        reps[owner.rep_id] = replace(previous, open_leads=max(previous.open_leads - 1, 0))
        changed_reps.append(owner.rep_id)
    owners = dict(state.owners)
    owners[lead_id] = LeadOwner(chosen.id, team.id)
    decision = Assignment(
        team.id, chosen.id, AssignmentReason.ROUND_ROBIN, territory, tuple(skipped)
    )
    return decision, AssignmentState(reps, owners), StateChange(tuple(changed_reps), (lead_id,))


CLOSING = frozenset({CrmStatus.REJECTED, CrmStatus.LOST, CrmStatus.WON})
RECYCLING = frozenset({CrmStatus.REJECTED, CrmStatus.LOST})


def apply_crm_status(
    state: AssignmentState, lead_id: str, status: CrmStatus
) -> tuple[AssignmentState, StateChange]:
    """Sales closed or recycled a lead: free the rep's slot, and on rejected/lost let the
    next hand-off of this lead go to whoever is next."""
    owner = state.owners.get(lead_id)
    if owner is None or status not in CLOSING or not owner.open:
        return state, StateChange()
    reps = dict(state.reps)
    current = state.rep(owner.rep_id)
    reps[owner.rep_id] = replace(current, open_leads=max(current.open_leads - 1, 0))
    closed = replace(owner, open=False, recycled=status in RECYCLING)
    owners = {**state.owners, lead_id: closed}
    return AssignmentState(reps, owners), StateChange((owner.rep_id,), (lead_id,))
