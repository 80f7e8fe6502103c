"""Rules for valid earning rules, tiers and active windows, shared by the admin forms and the API
serializers, so both give the same answer in the same words."""

from decimal import Decimal
from typing import Any

from .models import EarningRuleKind, Tier, TierBasis

# Per rule kind, the amount fields it uses; the others must stay empty (or at their neutral
# value, which is what the model stores for "not used").
KIND_FIELDS = {
    EarningRuleKind.PURCHASE: {"points_per_unit", "min_amount"},
    EarningRuleKind.FIXED: {"points"},
    EarningRuleKind.MULTIPLIER: {"factor", "tier", "plan"},
}
NEUTRAL = {"points_per_unit": Decimal("1"), "points": 0, "factor": Decimal("1")}
KIND_SPECIFIC = ("points_per_unit", "min_amount", "points", "factor", "tier", "plan")


def earning_rule_errors(kind: str, values: dict[str, Any]) -> dict[str, str]:
    """Field -> message for what does not fit the rule's kind; empty when valid."""
    if kind not in KIND_FIELDS:
        return {}
    errors: dict[str, str] = {}
    if kind == EarningRuleKind.PURCHASE:
        per_unit = values.get("points_per_unit")
        if per_unit is None or per_unit <= 0:
            errors["points_per_unit"] = "Purchase rules need points per unit above 0."
    elif kind == EarningRuleKind.FIXED:
        points = values.get("points")
        if not points or points <= 0:
            errors["points"] = "Fixed rules need points above 0."
        if not values.get("event_type"):
            errors["event_type"] = "Fixed rules need the event type they reward."
    elif kind == EarningRuleKind.MULTIPLIER:
        factor = values.get("factor")
        if factor is None or factor <= 1:
            errors["factor"] = "Multipliers need a factor above 1."
    label = EarningRuleKind(kind).label.lower()
    for name in KIND_SPECIFIC:
        value = values.get(name)
        if name in KIND_FIELDS[kind] or value in (None, "") or value == NEUTRAL.get(name):
            continue
        errors.setdefault(name, f"Leave this empty for a rule of kind “{label}”.")
    return errors


def window_error(active_from, active_until) -> str | None:
    if active_from and active_until and active_until <= active_from:
        return "The end of the window must be after its start."
    return None


def threshold_problems(tiers: list[Tier], basis: str, involving: Tier | None = None) -> list[str]:
    """Why these tiers' thresholds do not rise strictly with rank on `basis` (empty if they do);
    only the neighbours of `involving` when given."""
    field = "spend_threshold" if basis == TierBasis.SPEND else "points_threshold"
    label = "spend" if basis == TierBasis.SPEND else "points"
    ordered = sorted(tiers, key=lambda t: t.rank)
    problems = []
    for lower, higher in zip(ordered, ordered[1:], strict=False):
        if involving is not None and involving not in (lower, higher):
            continue
        if getattr(higher, field) <= getattr(lower, field):
            problems.append(
                f"{higher.name} (rank {higher.rank}) needs a higher {label} threshold than "
                f"{lower.name} (rank {lower.rank}, {getattr(lower, field)})."
            )
    return problems
