from datetime import UTC as utc
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from analytics.models import ClvBand, ConsentFilter, RfmSegment, Segment, SegmentMembership
from analytics.segments import (
    SegmentRules,
    count_matching,
    members_in_segment,
    refresh_segments,
    segment_queryset,
)
from journeys.models import JourneyStage
from members.models import Channel
from members.services import close_member, suspend_member
from tests.analytics.factories import (
    MemberFactory,
    MemberMetricsFactory,
    SegmentFactory,
    give_journey,
    give_tier,
)
from tests.rewards.factories import TierFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=utc)


def ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_empty_rules_match_every_member_who_is_not_closed():
    kept = MemberFactory()
    suspended = MemberFactory()
    suspend_member(member=suspended)
    closed = MemberFactory()
    close_member(member=closed)
    assert ids(segment_queryset(SegmentRules())) == {kept.pk, suspended.pk}


def test_tier_rule_matches_any_of_the_tiers():
    silver, gold, platinum = TierFactory(), TierFactory(), TierFactory()
    in_silver, in_gold, in_platinum, no_account = (MemberFactory() for _ in range(4))
    give_tier(in_silver, silver)
    give_tier(in_gold, gold)
    give_tier(in_platinum, platinum)
    segment = SegmentFactory(tiers=[silver, gold])
    assert ids(segment_queryset(segment)) == {in_silver.pk, in_gold.pk}
    assert no_account.pk not in ids(segment_queryset(segment))


def test_stage_rule_reads_the_current_journey_stage():
    loyal = JourneyStage.objects.get(slug="loyal")
    at_risk = JourneyStage.objects.get(slug="at-risk")
    a, b, c = MemberFactory(), MemberFactory(), MemberFactory()
    give_journey(a, stage=loyal, last_activity_at=NOW)
    give_journey(b, stage=at_risk, last_activity_at=NOW)
    segment = SegmentFactory(stages=[at_risk])
    assert ids(segment_queryset(segment)) == {b.pk}
    assert c.pk not in ids(segment_queryset(SegmentRules(stages=(loyal.pk,))))


def test_rfm_and_clv_band_rules_are_or_within_and_across():
    champion_top = MemberMetricsFactory(
        rfm_segment=RfmSegment.CHAMPIONS, clv_band=ClvBand.TOP
    ).member
    loyal_top = MemberMetricsFactory(rfm_segment=RfmSegment.LOYAL, clv_band=ClvBand.TOP).member
    loyal_low = MemberMetricsFactory(rfm_segment=RfmSegment.LOYAL, clv_band=ClvBand.LOW).member
    MemberMetricsFactory(rfm_segment=RfmSegment.LOST, clv_band=ClvBand.TOP)
    unscored = MemberFactory()

    either_segment = SegmentRules(rfm_segments=(RfmSegment.CHAMPIONS, RfmSegment.LOYAL))
    assert ids(segment_queryset(either_segment)) == {champion_top.pk, loyal_top.pk, loyal_low.pk}
    both_rules = SegmentRules(
        rfm_segments=(RfmSegment.CHAMPIONS, RfmSegment.LOYAL), clv_bands=(ClvBand.TOP,)
    )
    assert ids(segment_queryset(both_rules)) == {champion_top.pk, loyal_top.pk}
    assert unscored.pk not in ids(segment_queryset(either_segment))


def test_clv_and_p_alive_bounds_are_inclusive():
    low = MemberMetricsFactory(clv_12m=Decimal("50.00"), p_alive=0.2).member
    mid = MemberMetricsFactory(clv_12m=Decimal("100.00"), p_alive=0.5).member
    high = MemberMetricsFactory(clv_12m=Decimal("300.00"), p_alive=0.9).member
    MemberMetricsFactory(clv_12m=None, p_alive=None)
    assert ids(segment_queryset(SegmentRules(min_clv=Decimal("100")))) == {mid.pk, high.pk}
    assert ids(segment_queryset(SegmentRules(max_clv=Decimal("100")))) == {low.pk, mid.pk}
    assert ids(segment_queryset(SegmentRules(min_p_alive=0.5, max_p_alive=0.5))) == {mid.pk}
    assert ids(segment_queryset(SegmentRules(max_p_alive=0.3))) == {low.pk}


def test_activity_rules_count_from_last_event_or_enrollment():
    recent = MemberFactory(enrolled_at=NOW - timedelta(days=400))
    give_journey(recent, last_activity_at=NOW - timedelta(days=3))
    stale = MemberFactory(enrolled_at=NOW - timedelta(days=400))
    give_journey(stale, last_activity_at=NOW - timedelta(days=100))
    silent_new = MemberFactory(enrolled_at=NOW - timedelta(days=2))
    silent_old = MemberFactory(enrolled_at=NOW - timedelta(days=200))

    active = segment_queryset(SegmentRules(active_within_days=30), now=NOW)
    assert ids(active) == {recent.pk, silent_new.pk}
    inactive = segment_queryset(SegmentRules(inactive_for_days=90), now=NOW)
    assert ids(inactive) == {stale.pk, silent_old.pk}
    window = segment_queryset(SegmentRules(inactive_for_days=50, active_within_days=150), now=NOW)
    assert ids(window) == {stale.pk}


def test_channel_and_country_rules():
    pos_nl = MemberFactory(channel=Channel.POS, country="NL")
    web_de = MemberFactory(channel=Channel.WEB, country="DE")
    MemberFactory(channel=Channel.API, country="FR")
    assert ids(segment_queryset(SegmentRules(enrollment_channels=("pos", "web")))) == {
        pos_nl.pk,
        web_de.pk,
    }
    rules = SegmentRules.from_mapping({"countries": ["de", "fr"], "enrollment_channels": ["web"]})
    assert ids(segment_queryset(rules)) == {web_de.pk}


@time_machine.travel(NOW, tick=False)
def test_age_band_counts_whole_years_on_today():
    turns_30_today = MemberFactory(birth_date=date(1996, 4, 1))
    turns_30_tomorrow = MemberFactory(birth_date=date(1996, 4, 2))
    age_40 = MemberFactory(birth_date=date(1985, 6, 1))
    MemberFactory(birth_date=None)
    thirties = SegmentRules(min_age=30, max_age=39)
    assert ids(segment_queryset(thirties)) == {turns_30_today.pk}
    assert ids(segment_queryset(SegmentRules(max_age=29))) == {turns_30_tomorrow.pk}
    assert ids(segment_queryset(SegmentRules(min_age=40))) == {age_40.pk}


def test_consent_rule():
    given = MemberFactory(marketing_consent=True)
    not_given = MemberFactory(marketing_consent=False)
    assert ids(segment_queryset(SegmentRules(marketing_consent=ConsentFilter.GIVEN))) == {given.pk}
    assert ids(segment_queryset(SegmentRules(marketing_consent=ConsentFilter.NOT_GIVEN))) == {
        not_given.pk
    }
    assert len(ids(segment_queryset(SegmentRules(marketing_consent=ConsentFilter.ANY)))) == 2


def test_segment_query_is_one_sql_statement(django_assert_num_queries):
    gold = TierFactory()
    loyal = JourneyStage.objects.get(slug="loyal")
    segment = SegmentFactory(
        tiers=[gold],
        stages=[loyal],
        rfm_segments=[RfmSegment.CHAMPIONS],
        min_clv=Decimal("1"),
        inactive_for_days=5,
        countries=["NL"],
        marketing_consent=ConsentFilter.GIVEN,
    )
    rules = SegmentRules.from_segment(segment)
    with django_assert_num_queries(1):
        count_matching(rules)


def test_refresh_inserts_newcomers_deletes_leavers_and_keeps_stayers_added_at():
    stayer = MemberMetricsFactory(rfm_segment=RfmSegment.CHAMPIONS)
    leaver = MemberMetricsFactory(rfm_segment=RfmSegment.CHAMPIONS)
    newcomer = MemberMetricsFactory(rfm_segment=RfmSegment.LOYAL)
    segment = SegmentFactory(rfm_segments=[RfmSegment.CHAMPIONS])
    first = timezone.now() - timedelta(days=1)

    assert refresh_segments(segment_ids=[segment.pk], now=first) == {segment.pk: 2}

    leaver.rfm_segment = RfmSegment.AT_RISK
    leaver.save()
    newcomer.rfm_segment = RfmSegment.CHAMPIONS
    newcomer.save()
    second = timezone.now()
    assert refresh_segments(segment_ids=[segment.pk], now=second) == {segment.pk: 2}

    added = dict(
        SegmentMembership.objects.filter(segment=segment).values_list("member_id", "added_at")
    )
    assert added == {stayer.member_id: first, newcomer.member_id: second}
    assert ids(members_in_segment(segment)) == {stayer.member_id, newcomer.member_id}
    segment.refresh_from_db()
    assert segment.member_count == 2
    assert segment.refreshed_at == second


def test_refresh_all_skips_inactive_segments_and_counts_each():
    MemberFactory(country="NL")
    MemberFactory(country="DE")
    nl = SegmentFactory(countries=["NL"])
    everyone = SegmentFactory()
    paused = SegmentFactory(active=False)
    assert refresh_segments() == {nl.pk: 1, everyone.pk: 2}
    assert not SegmentMembership.objects.filter(segment=paused).exists()


def test_refresh_removes_members_who_closed():
    member = MemberFactory()
    segment = SegmentFactory()
    refresh_segments(segment_ids=[segment.pk])
    close_member(member=member)
    assert refresh_segments(segment_ids=[segment.pk]) == {segment.pk: 0}


# ---------------------------------------------------------------------------- admin


COUNT_URL = "/admin/analytics/segment/count/"


def form_data(**rules) -> dict:
    data = {
        "name": "",
        "slug": "",
        "description": "",
        "active": "on",
        "min_clv": "",
        "max_clv": "",
        "min_p_alive": "",
        "max_p_alive": "",
        "active_within_days": "",
        "inactive_for_days": "",
        "countries": "",
        "min_age": "",
        "max_age": "",
        "marketing_consent": "any",
    }
    data.update(rules)
    return data


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


def test_live_count_counts_the_rules_as_entered(marketer_client):
    MemberFactory(country="NL", marketing_consent=True)
    MemberFactory(country="NL")
    MemberFactory(country="DE", marketing_consent=True)
    response = marketer_client.post(
        COUNT_URL, form_data(countries="nl, be", marketing_consent="given")
    )
    assert response.status_code == 200
    assert response.json() == {"count": 1, "text": "1 member matches"}
    response = marketer_client.post(COUNT_URL, form_data(countries="NL DE"))
    assert response.json() == {"count": 3, "text": "3 members match"}


def test_live_count_reads_list_choices(marketer_client):
    MemberMetricsFactory(rfm_segment=RfmSegment.CHAMPIONS, clv_band=ClvBand.TOP)
    MemberMetricsFactory(rfm_segment=RfmSegment.LOST, clv_band=ClvBand.TOP)
    data = form_data(rfm_segments=["champions", "loyal"], clv_bands=["top"])
    assert marketer_client.post(COUNT_URL, data).json()["count"] == 1


def test_live_count_reports_rule_errors_and_no_count(marketer_client):
    response = marketer_client.post(
        COUNT_URL, form_data(min_age="40", max_age="30", countries="Netherlands", name="")
    )
    assert response.status_code == 200
    assert response.json()["count"] is None
    assert set(response.json()["errors"]) == {"max_age", "countries"}


def test_live_count_requires_csrf(client, marketer):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(marketer)
    assert csrf_client.post(COUNT_URL, form_data()).status_code == 403


def test_live_count_is_for_staff_with_segment_rights(client, support, analyst):
    assert client.post(COUNT_URL, form_data()).status_code == 302  # to the admin login
    client.force_login(support)
    assert client.post(COUNT_URL, form_data()).status_code == 403
    client.force_login(analyst)
    assert client.post(COUNT_URL, form_data()).status_code == 200
    assert client.get(COUNT_URL).status_code == 405


def test_adding_a_segment_sets_created_by_and_validates(marketer_client, marketer):
    bad = marketer_client.post(
        "/admin/analytics/segment/add/",
        form_data(
            name="Thirties",
            slug="thirties",
            min_age="39",
            max_age="30",
            min_p_alive="0.9",
            max_p_alive="0.2",
            active_within_days="10",
            inactive_for_days="30",
            countries="NL, XYZ",
        ),
    )
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert set(errors) == {"max_age", "max_p_alive", "inactive_for_days", "countries"}

    response = marketer_client.post(
        "/admin/analytics/segment/add/",
        form_data(
            name="Dutch champions",
            slug="dutch-champions",
            countries="nl,NL, be",
            rfm_segments=["champions"],
            enrollment_channels=["web", "pos"],
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    segment = Segment.objects.get(slug="dutch-champions")
    assert segment.created_by == marketer
    assert segment.countries == ["NL", "BE"]
    assert segment.rfm_segments == ["champions"]
    assert segment.enrollment_channels == ["web", "pos"]

    page = marketer_client.get(f"/admin/analytics/segment/{segment.pk}/change/")
    body = page.content.decode()
    assert 'value="NL, BE"' in body
    assert "analytics/segment_count.js" in body
    assert f'data-count-url="{COUNT_URL}"' in body
    assert f"/admin/analytics/segment/{segment.pk}/members.csv" in body


def test_refresh_now_action(marketer_client):
    MemberFactory(country="NL")
    segment = SegmentFactory(countries=["NL"])
    response = marketer_client.post(
        "/admin/analytics/segment/",
        {"action": "refresh_now", "_selected_action": [segment.pk]},
        follow=True,
    )
    assert "Refreshed 1 segment(s)" in response.content.decode()
    segment.refresh_from_db()
    assert segment.member_count == 1
    assert segment.refreshed_at is not None


def _csv(response) -> list[dict]:
    import csv
    import io

    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_of_the_refreshed_members(marketer_client):
    nl = MemberFactory(country="NL", first_name="Noor", marketing_consent=True)
    MemberFactory(country="DE")
    segment = SegmentFactory(countries=["NL"], slug="dutch")
    refresh_segments(segment_ids=[segment.pk])

    response = marketer_client.get(f"/admin/analytics/segment/{segment.pk}/members.csv")
    assert response["Content-Disposition"] == 'attachment; filename="segment-dutch.csv"'
    (row,) = _csv(response)
    assert row["segment"] == "dutch"
    assert row["member_number"] == nl.member_number
    assert row["first_name"] == "Noor"
    assert row["marketing_consent"] == "True"
    assert row["added_at"]

    everyone = SegmentFactory(slug="everyone")
    refresh_segments(segment_ids=[everyone.pk])
    action = marketer_client.post(
        "/admin/analytics/segment/",
        {"action": "export_members", "_selected_action": [segment.pk, everyone.pk]},
    )
    rows = _csv(action)
    assert sorted(row["segment"] for row in rows) == ["dutch", "everyone", "everyone"]


def test_csv_export_refused_without_segment_rights(client, support):
    segment = SegmentFactory()
    client.force_login(support)
    assert client.get(f"/admin/analytics/segment/{segment.pk}/members.csv").status_code == 403


def test_csv_export_defuses_formulas_in_member_names(marketer_client):
    MemberFactory(first_name='=HYPERLINK("http://evil.example","x")', last_name="@SUM(1)")
    segment = SegmentFactory()
    refresh_segments(segment_ids=[segment.pk])
    (row,) = _csv(marketer_client.get(f"/admin/analytics/segment/{segment.pk}/members.csv"))
    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["last_name"] == "'@SUM(1)"
