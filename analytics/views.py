"""The analysts' dashboards: thin views over analytics.reports. Every page shows the snapshots
of one pipeline run (the latest successful one, or the latest on or before the date picked) and
offers each of its tables as CSV with `?format=csv&table=<name>`."""

from collections.abc import Callable

from django import forms
from django.http import Http404
from django.shortcuts import render

from members.roles import ANALYST
from members.views import staff_role_required
from rewards.selectors import program_settings

from . import reports
from .models import ChurnRisk, CohortBasis

CHURN_PAGE_SIZE = 50
# (url name, label): the dashboards' navigation, in order.
PAGES = [
    ("overview", "Overview"),
    ("retention", "Retention"),
    ("lifetime_value", "Lifetime value"),
    ("churn", "Churn risk"),
    ("journey", "Journey"),
    ("feedback", "Feedback"),
    ("paid_plan", "Paid plan"),
]


analyst_required = staff_role_required(ANALYST, denied="The dashboards are for analysts.")


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        label="Data as of",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The latest run on or before this date is shown.",
    )


TITLES = dict(PAGES)


def _dashboard(request, *, page: str, build: Callable[[reports.AsOf, str], reports.Dashboard]):
    form = AsOfForm(request.GET or None)
    requested = form.cleaned_data["as_of"] if form.is_valid() else None
    as_of = reports.resolve_as_of(requested)
    if not form.is_bound and as_of.run is not None:
        form = AsOfForm(initial={"as_of": as_of.date})
    program = program_settings()
    context = {
        "form": form,
        "as_of": as_of,
        "page": page,
        "title": TITLES[page],
        "pages": PAGES,
        "program_name": program.name,
        "currency": program.currency,
        "program_zone": program.timezone,
    }
    if as_of.run is None:
        if request.GET.get("format") == "csv":
            raise Http404("No pipeline run to export.")
        return render(request, "analytics/no_data.html", context)
    board = build(as_of, program.currency)
    if request.GET.get("format") == "csv":
        table = board.tables.get(request.GET.get("table", ""))
        if table is None:
            raise Http404("No such table on this page.")
        filename = f"{page.replace('_', '-')}-{table.name}-{as_of.date}.csv"
        return reports.csv_response(table.csv_rows(), filename)
    for table in board.tables.values():
        query = request.GET.copy()
        query.update({"format": "csv", "table": table.name, "as_of": as_of.date.isoformat()})
        query.pop("page", None)
        table.csv_href = "?" + query.urlencode()
    context["board"] = board
    return render(request, f"analytics/{page}.html", context)


def _page(page: str, report: Callable[..., reports.Dashboard]):
    """The view of a dashboard built from the date and the program's currency only."""

    @analyst_required
    def view(request):
        return _dashboard(
            request, page=page, build=lambda as_of, currency: report(as_of, currency=currency)
        )

    return view


overview = _page("overview", reports.overview)
lifetime_value = _page("lifetime_value", reports.lifetime_value)
journey = _page("journey", reports.journey)
paid_plan = _page("paid_plan", reports.paid_plan)


@analyst_required
def retention(request):
    basis = request.GET.get("basis")
    if basis not in (CohortBasis.ENROLLMENT, CohortBasis.FIRST_PURCHASE):
        basis = CohortBasis.ENROLLMENT
    return _dashboard(
        request,
        page="retention",
        build=lambda as_of, currency: reports.retention(as_of, basis=basis),
    )


@analyst_required
def churn(request):
    band = request.GET.get("band")
    if band not in ChurnRisk.values:
        band = ChurnRisk.HIGH
    return _dashboard(
        request,
        page="churn",
        build=lambda as_of, currency: reports.churn_risk(
            as_of,
            currency=currency,
            band=band,
            page_size=CHURN_PAGE_SIZE,
            page_number=request.GET.get("page"),
        ),
    )


@analyst_required
def feedback(request):
    return _dashboard(
        request, page="feedback", build=lambda as_of, currency: reports.feedback(as_of)
    )
