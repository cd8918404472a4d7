"""Errors of the scorer.

    HotleadError                 (services.common.errors)
    └── ScorerError              base of the scorer's errors
        ├── RulesError           the rules file is invalid: fix the named rule and field
        └── LeadNotFoundError    GET /leads/{id} for a lead the scorer has never seen

None is retriable: each needs a fix or a different request.
"""

from services.common.errors import HotleadError


class ScorerError(HotleadError):
    pass


class RulesError(ScorerError):
    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"rules file {source} is invalid:\n  " + "\n  ".join(problems))
        self.source = source
        self.problems = problems


class LeadNotFoundError(ScorerError):
    def __init__(self, lead_id: str) -> None:
        super().__init__(f"no events scored for lead {lead_id!r} yet")
        self.lead_id = lead_id
