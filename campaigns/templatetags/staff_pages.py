"""The staff pages outside the admin (dashboards, journey map, feedback and campaign results),
linked from the admin's header for the roles that may open them."""

from django import template
from django.urls import reverse

from members.roles import ANALYST, MARKETER

register = template.Library()

PAGES = (
    ("Dashboards", "analytics:overview", {ANALYST}),
    ("Journey map", "journeys:map", {ANALYST, MARKETER}),
    ("Feedback results", "feedback:results", {ANALYST, MARKETER}),
    ("Campaign results", "campaigns:results_list", {ANALYST, MARKETER}),
)


@register.simple_tag(takes_context=True)
def staff_pages(context) -> list[tuple[str, str]]:
    """(label, url) of the pages this user may open; one query for the user's groups."""
    user = context.get("user")
    if user is None or not user.is_active or not user.is_staff:
        return []
    if user.is_superuser:
        return [(label, reverse(name)) for label, name, _ in PAGES]
    groups = set(user.groups.values_list("name", flat=True))
    return [(label, reverse(name)) for label, name, roles in PAGES if roles & groups]
