"""Rules for a valid earning rule, shared by the admin form and the API serializer."""

from decimal import Decimal
from typing import Any

from .models import EarningRuleKind

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
