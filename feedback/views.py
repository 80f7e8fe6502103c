"""Portal pages (surveys for you, answering), the invitation link (no login: the token is the
member's), and the results page for analysts and marketers. Thin: the services decide."""

import csv
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from journeys.views import map_viewer_required
from members.exceptions import DomainError
from members.views import member_required
from rewards.selectors import program_settings

from . import selectors, services
from .exceptions import InvalidAnswers
from .forms import AnswerForm, ResultsFilterForm
from .models import AnsweredVia, Invitation, InvitationStatus, Survey, SurveyResponse


def _thanks(submitted: services.Submitted, points_name: str) -> str:
    if submitted.points:
        return (
            f"Thank you for your answers! You earned {submitted.points} {points_name}; "
            f"your balance is now {submitted.balance} {points_name}."
        )
    return "Thank you for your answers!"


def _context(program, **extra) -> dict:
    return {
        "program_name": program.name,
        "points_name": program.points_name,
        "program_zone": program.timezone,
        **extra,
    }


@member_required
def survey_list(request):
    program = program_settings()
    now = timezone.now()
    zone = ZoneInfo(program.timezone)
    invitations = list(selectors.open_invitations(request.member, at=now))
    for invitation in invitations:
        invitation.moment = services.describe_moment(invitation, zone)
    return render(
        request,
        "feedback/survey_list.html",
        _context(
            program,
            invitations=invitations,
            open_surveys=selectors.open_surveys(request.member, at=now),
            answered=selectors.member_responses(request.member)[:20],
        ),
    )


def _answer_page(
    request,
    *,
    survey: Survey,
    member,
    invitation,
    via: str,
    program,
    done_url: str,
    extra_context: dict | None = None,
):
    """The survey form; a POST takes the answers and, unless they need correcting, redirects
    to `done_url` with a message (thanks, or why the answers were refused)."""
    form = AnswerForm(
        request.POST if request.method == "POST" else None, questions=list(survey.questions.all())
    )
    if request.method == "POST":
        try:
            submitted = services.submit_response(
                survey=survey,
                member=member,
                answers=form.raw_answers(),
                via=via,
                invitation=invitation,
            )
        except InvalidAnswers as exc:
            form.add_service_errors(exc.errors)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect(done_url)
        else:
            messages.success(request, _thanks(submitted, program.points_name))
            return redirect(done_url)
    zone = ZoneInfo(program.timezone)
    return render(
        request,
        "feedback/answer.html",
        _context(
            program,
            survey=survey,
            form=form,
            moment=services.describe_moment(invitation, zone) if invitation else "",
            **(extra_context or {}),
        ),
    )


@member_required
@require_http_methods(["GET", "POST"])
def answer_survey(request, survey_id: int):
    program = program_settings()
    now = timezone.now()
    survey = get_object_or_404(Survey.objects.filter(active=True), pk=survey_id)
    invitation = (
        selectors.open_invitations(request.member, at=now).filter(survey_id=survey.pk).first()
    )
    answered = SurveyResponse.objects.filter(survey_id=survey.pk, member_id=request.member.pk)
    if invitation is None and not (
        survey.open_to_all and survey.is_live(now) and not answered.exists()
    ):
        messages.info(request, "This survey is not waiting for your answers.")
        return redirect("feedback:surveys")
    return _answer_page(
        request,
        survey=survey,
        member=request.member,
        invitation=invitation,
        via=AnsweredVia.PORTAL,
        program=program,
        done_url=reverse("feedback:surveys"),
    )


@require_http_methods(["GET", "POST"])
def answer_link(request, token: str):
    """The invitation email's link: that one survey, for that member, once."""
    program = program_settings()
    invitation = get_object_or_404(
        Invitation.objects.select_related("survey", "member", "touchpoint"), token=token
    )
    if invitation.status in (InvitationStatus.SCHEDULED, InvitationStatus.SKIPPED):
        raise Http404("No such invitation.")
    now = timezone.now()
    survey, member = invitation.survey, invitation.member
    state = invitation.state(now)
    if state == "sent" and not survey.active:
        state = "closed"
    if state != "sent" or member.status == "closed":
        status = {"answered": 200, "expired": 410}.get(state, 410)
        return render(
            request,
            "feedback/link_closed.html",
            _context(program, survey=survey, state=state),
            status=status,
        )
    return _answer_page(
        request,
        survey=survey,
        member=member,
        invitation=invitation,
        via=AnsweredVia.LINK,
        program=program,
        done_url=reverse("feedback:answer_link", args=[token]),
        extra_context={"member": member, "by_link": True},
    )


# -- results ---------------------------------------------------------------------------------


def _filters(form: ResultsFilterForm, zone: ZoneInfo) -> selectors.ResultFilters:
    if not form.is_valid():
        return selectors.ResultFilters()
    data = form.cleaned_data
    start = datetime.combine(data["start"], time.min, tzinfo=zone) if data.get("start") else None
    end = (
        datetime.combine(data["end"] + timedelta(days=1), time.min, tzinfo=zone)
        if data.get("end")
        else None
    )
    survey = data.get("survey")
    return selectors.ResultFilters(start=start, end=end, survey_id=survey.pk if survey else None)


@map_viewer_required
def results(request):
    program = program_settings()
    zone = ZoneInfo(program.timezone)
    form = ResultsFilterForm(request.GET or None)
    filters = _filters(form, zone)
    tables = [
        (selectors.DIMENSION_TITLES[name], name, selectors.breakdown(name, filters, zone))
        for name in selectors.DIMENSIONS
    ]
    summary = selectors.overall(filters)
    if request.GET.get("format") == "csv":
        return _csv(summary, tables)
    query = request.GET.copy()
    query["format"] = "csv"
    return render(
        request,
        "feedback/results.html",
        _context(
            program,
            form=form,
            summary=summary,
            tables=tables,
            terms=selectors.text_terms(filters),
            texts=selectors.text_answers(filters),
            csv_query=query.urlencode(),
        ),
    )


def _number(value) -> str:
    return "" if value is None else str(value)


def _csv(summary, tables) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="feedback-results.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "dimension",
            "value",
            "responses",
            "invitations_sent",
            "response_rate_pct",
            "nps",
            "nps_answers",
            "csat_pct",
            "csat_answers",
            "ces",
            "ces_answers",
        ]
    )
    rows = [("all", [summary])] + [(name, found) for _, name, found in tables]
    for dimension, found in rows:
        for row in found:
            writer.writerow(
                [
                    dimension,
                    row.label,
                    row.responses,
                    row.invitations,
                    _number(row.response_rate),
                    _number(row.nps),
                    row.nps_answers,
                    _number(row.csat),
                    row.csat_answers,
                    _number(row.ces),
                    row.ces_answers,
                ]
            )
    return response
