"""The staff pages outside the admin (dashboards, journey map, feedback and campaign results),
linked from the admin's header for the roles that may open them: the roles each page's
`staff_role_required` decorator admits, read from the view itself."""

from django import template
from django.urls import resolve, reverse

register = template.Library()

PAGES = (
    ("Dashboards", "analytics:overview"),
    ("Journey map", "journeys:map"),
    ("Feedback results", "feedback:results"),
    ("Campaign results", "campaigns:results_list"),
)


@register.simple_tag(takes_context=True)
def staff_pages(context) -> list[tuple[str, str]]:
    """(label, url) of the pages this user may open; one query for the user's groups."""
    user = context.get("user")
    if user is None or not user.is_active or not user.is_staff:
        return []
    pages = [(label, reverse(name)) for label, name in PAGES]
    if user.is_superuser:
        return pages
    groups = set(user.groups.values_list("name", flat=True))
    return [(label, url) for label, url in pages if resolve(url).func.staff_roles & groups]
