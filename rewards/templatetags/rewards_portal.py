"""The rewards cards on the portal home page, which the members app renders without knowing
about rewards: templates/portal/home.html loads this library in its `home_cards` block."""

from django import template

from ..selectors import member_balance, program_settings

register = template.Library()


@register.inclusion_tag("rewards/_home_cards.html")
def rewards_home_cards(member):
    program = program_settings()
    return {
        "summary": member_balance(member),
        "program": program,
        "program_zone": program.timezone,
    }
