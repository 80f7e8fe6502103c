"""Extension points of the earning engine for higher apps, without rewards importing them.

A higher app (campaigns) registers in its AppConfig.ready():

- a multiplier provider, `function(member_id, event, when) -> list[ExtraMultiplier]`: extra
  multipliers the member has for this event (a campaign's "double points" offer). The engine
  adds `base × (factor − 1)` for each, capped at `max_points`, as a line named `label`.
- an award listener, `function(*, member_id, transaction, lines)`: called inside the award's
  transaction once its ledger row exists, so the provider's owner can book what it gave.

Providers run for dry runs (the rule simulator) too; they must not write.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class ExtraMultiplier:
    label: str
    factor: Decimal
    max_points: int | None = None  # what is left of a budget; None: no cap

    def capped(self, points: int) -> int:
        return points if self.max_points is None else max(0, min(points, self.max_points))


multiplier_providers: list[Callable] = []
award_listeners: list[Callable] = []


def register_multiplier_provider(provider: Callable) -> None:
    if provider not in multiplier_providers:
        multiplier_providers.append(provider)


def register_award_listener(listener: Callable) -> None:
    if listener not in award_listeners:
        award_listeners.append(listener)


def extra_multipliers(member_id: int, event, when) -> list[ExtraMultiplier]:
    return [
        extra for provider in multiplier_providers for extra in provider(member_id, event, when)
    ]


def members_with_extra_multipliers(member_ids, start, end) -> set[int] | None:
    """Members who may have extra multipliers for events between start and end (a superset),
    for callers awarding many events at once (rewards.services.bulk); None when a provider
    cannot tell (it has no `members_with_offers(member_ids, start, end)` attribute)."""
    found: set[int] = set()
    for provider in multiplier_providers:
        prefilter = getattr(provider, "members_with_offers", None)
        if prefilter is None:
            return None
        found |= set(prefilter(member_ids, start, end))
    return found


def notify_award(*, member_id: int, transaction, lines) -> None:
    for listener in award_listeners:
        listener(member_id=member_id, transaction=transaction, lines=lines)
