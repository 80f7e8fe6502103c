"""The member's activity timeline (portal) and the journey map (analysts and marketers):
thin views over journeys.reports."""

import csv
from datetime import date

from django import forms
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from members.roles import ANALYST, MARKETER
from members.views import member_required, staff_role_required
from rewards.selectors import program_settings

from . import reports
from .models import EventType, TouchpointChannel

PAGE_SIZE = 25
MAP_ROLES = (ANALYST, MARKETER)


@member_required
def activity(request):
    program = program_settings()
    page = Paginator(reports.member_activity(request.member), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    labels = dict(EventType.choices)
    for event in page.object_list:
        event.label = (
            labels.get(event.event_type) or event.event_type.replace("_", " ").capitalize()
        )
    return render(
        request,
        "journeys/activity.html",
        {
            "member": request.member,
            "page": page,
            "journey": reports.current_stage(request.member),
            "program_name": program.name,
            "points_name": program.points_name,
            "program_zone": program.timezone,
        },
    )


map_viewer_required = staff_role_required(
    *MAP_ROLES, denied="The journey map is for analysts and marketers."
)


class MapFilterForm(forms.Form):
    cohort = forms.TypedChoiceField(
        label="Enrolled in", required=False, coerce=date.fromisoformat, empty_value=None
    )
    channel = forms.ChoiceField(label="Channel", required=False)
    tier = forms.TypedChoiceField(label="Tier", required=False, coerce=int, empty_value=None)

    def __init__(self, *args, months: list[date], tiers: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cohort"].choices = [("", "All months")] + [
            (month.isoformat(), month.strftime("%B %Y")) for month in months
        ]
        self.fields["channel"].choices = [("", "All channels"), *TouchpointChannel.choices]
        self.fields["tier"].choices = [("", "All tiers")] + [(t.pk, t.name) for t in tiers]

    def filters(self) -> reports.MapFilters:
        if not self.is_valid():
            return reports.MapFilters()
        data = self.cleaned_data
        return reports.MapFilters(
            cohort=data["cohort"], channel=data["channel"], tier_id=data["tier"]
        )


@map_viewer_required
def journey_map(request):
    program = program_settings()
    zone = reports.ZoneInfo(program.timezone)
    form = MapFilterForm(
        request.GET or None,
        months=reports.cohort_months(zone, timezone.now().astimezone(zone).date()),
        tiers=reports.tiers(),
    )
    filters = form.filters()
    result = reports.journey_map(filters=filters, zone=zone)
    if request.GET.get("format") == "csv":
        return _csv(result)
    return render(
        request,
        "journeys/map.html",
        {
            "form": form,
            "filters": filters,
            "map": result,
            "program_name": program.name,
            "csv_query": _csv_query(request),
        },
    )


def _csv_query(request) -> str:
    query = request.GET.copy()
    query["format"] = "csv"
    return query.urlencode()


def _csv(result: reports.JourneyMap) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="journey-map.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "order",
            "stage",
            "members_now",
            "ever_entered",
            "entered_next_stage",
            "conversion_to_next",
            "median_days_in_stage",
            "touchpoint_events",
            "touchpoints",
        ]
    )
    for column in result.stages:
        writer.writerow(
            [
                column.stage.order,
                column.stage.name,
                column.members,
                column.entered,
                column.converted if column.next_stage else "",
                f"{column.conversion:.4f}" if column.conversion is not None else "",
                f"{column.median_days:.2f}" if column.median_days is not None else "",
                column.touchpoint_events,
                "; ".join(
                    f"{t.touchpoint.name} ({', '.join([str(t.events), *t.notes])})"
                    for t in column.touchpoints
                ),
            ]
        )
    return response
