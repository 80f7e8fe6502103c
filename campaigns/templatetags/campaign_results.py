"""Formatting of rates and uplifts on the results pages."""

from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.1234 -> "12.3%"; None -> "–"."""
    if value is None:
        return "–"
    return f"{value * 100:.1f}%"


@register.filter
def points_of_percent(value) -> str:
    """A difference of rates in percentage points, signed: 0.031 -> "+3.1 pp"."""
    if value is None:
        return "–"
    return f"{value * 100:+.1f} pp"
