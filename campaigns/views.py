"""Pages of the campaigns app: the member's offers (portal), the unsubscribe link (no login)
and the results for analysts and marketers (/analytics/campaigns/). Thin views."""

from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from members.roles import ANALYST, MARKETER
from members.views import member_required, staff_role_required
from rewards.selectors import program_settings

from . import selectors, services
from .exceptions import InvalidUnsubscribeLink
from .models import Campaign, CampaignStatus

RESULTS_ROLES = (ANALYST, MARKETER)


@member_required
def offers(request):
    program = program_settings()
    return render(
        request,
        "campaigns/offers.html",
        {
            "offers": list(selectors.member_offers(request.member)),
            "points_name": program.points_name,
            "program_zone": program.timezone,
        },
    )


@csrf_exempt  # the signed token is the credential; mail clients POST it (RFC 8058 one-click)
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET asks to confirm (link scanners only GET); POST withdraws consent, no login needed."""
    try:
        member = services.member_for_unsubscribe(token)
    except InvalidUnsubscribeLink:
        return render(request, "campaigns/unsubscribe.html", {"invalid": True}, status=400)
    done = False
    if request.method == "POST":
        member = services.unsubscribe(token=token)
        done = True
    return render(
        request,
        "campaigns/unsubscribe.html",
        {"done": done, "subscribed": member.marketing_consent, "email": member.email},
    )


results_viewer_required = staff_role_required(
    *RESULTS_ROLES, denied="Campaign results are for analysts and marketers."
)


def _dashboard_pages() -> list[tuple[str, str]]:
    from analytics.views import PAGES

    return [(reverse(f"analytics:{name}"), label) for name, label in PAGES]


@results_viewer_required
def results_list(request):
    return render(
        request,
        "campaigns/results_list.html",
        {
            "title": "Campaigns",
            "rows": selectors.launched_campaign_results(),
            "dashboard_pages": _dashboard_pages(),
            "program_zone": program_settings().timezone,
        },
    )


@results_viewer_required
def results(request, pk: int):
    campaign = get_object_or_404(
        Campaign.objects.select_related("segment", "trigger_stage", "reward"), pk=pk
    )
    program = program_settings()
    return render(
        request,
        "campaigns/results.html",
        {
            "title": campaign.name,
            "campaign": campaign,
            "result": selectors.results_for(campaign),
            "is_draft": campaign.status == CampaignStatus.DRAFT,
            "dashboard_pages": _dashboard_pages(),
            "program_zone": program.timezone,
            "points_name": program.points_name,
        },
    )
