from datetime import date
from decimal import Decimal

import pytest

from analytics.goals import (
    GoalStatus,
    elapsed_share,
    goal_progress,
    goals_progress,
    target_from_change,
)
from analytics.models import Kpi
from tests.analytics.factories import GoalFactory, KpiSnapshotFactory

pytestmark = pytest.mark.django_db

START, DEADLINE = date(2026, 1, 1), date(2026, 7, 1)  # 181 days


def retention(on: date, value: str):
    return KpiSnapshotFactory(kpi=Kpi.RETENTION_RATE, as_of=on, value=Decimal(value))


def test_progress_is_the_share_of_the_way_from_baseline_to_target():
    goal = GoalFactory(baseline=Decimal("0.40"), target=Decimal("0.46"))
    retention(date(2026, 4, 1), "0.43")
    result = goal_progress(goal, as_of=date(2026, 4, 1))
    assert result.current == Decimal("0.43")
    assert result.current_on == date(2026, 4, 1)
    assert result.progress == pytest.approx(0.5)
    assert result.elapsed == pytest.approx(90 / 181)
    assert result.status == GoalStatus.ON_TRACK


def test_behind_when_progress_trails_the_time_elapsed():
    goal = GoalFactory(baseline=Decimal("0.40"), target=Decimal("0.46"))
    retention(date(2026, 5, 1), "0.42")  # a third of the way, two thirds of the time
    result = goal_progress(goal, as_of=date(2026, 5, 1))
    assert result.progress == pytest.approx(1 / 3)
    assert result.status == GoalStatus.BEHIND


def test_moving_the_wrong_way_is_negative_progress_and_behind():
    goal = GoalFactory(baseline=Decimal("0.40"), target=Decimal("0.46"))
    retention(date(2026, 2, 1), "0.37")
    result = goal_progress(goal, as_of=date(2026, 2, 1))
    assert result.progress == pytest.approx(-0.5)
    assert result.progress_percent == 0
    assert result.status == GoalStatus.BEHIND


def test_achieved_when_the_target_is_reached():
    goal = GoalFactory(baseline=Decimal("0.40"), target=Decimal("0.46"))
    retention(date(2026, 2, 1), "0.47")
    result = goal_progress(goal, as_of=date(2026, 3, 1))
    assert result.status == GoalStatus.ACHIEVED
    assert result.progress_percent == 100


def test_lower_is_better_kpi_counts_a_fall_as_progress():
    goal = GoalFactory(
        kpi=Kpi.CHURN_RATE, baseline=Decimal("0.20"), target=Decimal("0.15"), deadline=DEADLINE
    )
    KpiSnapshotFactory(kpi=Kpi.CHURN_RATE, as_of=date(2026, 2, 1), value=Decimal("0.18"))
    result = goal_progress(goal, as_of=date(2026, 2, 1))
    assert result.lower_is_better
    assert result.progress == pytest.approx(0.4)
    assert result.status == GoalStatus.ON_TRACK

    KpiSnapshotFactory(kpi=Kpi.CHURN_RATE, as_of=date(2026, 3, 1), value=Decimal("0.15"))
    assert goal_progress(goal, as_of=date(2026, 3, 1)).status == GoalStatus.ACHIEVED
    KpiSnapshotFactory(kpi=Kpi.CHURN_RATE, as_of=date(2026, 4, 1), value=Decimal("0.22"))
    worse = goal_progress(goal, as_of=date(2026, 4, 1))
    assert worse.status == GoalStatus.BEHIND
    assert worse.progress == pytest.approx(-0.4)


def test_no_data_without_a_snapshot_in_the_goal_window():
    goal = GoalFactory()
    retention(date(2025, 12, 31), "0.50")  # before the baseline date: not progress
    KpiSnapshotFactory(kpi=Kpi.AVERAGE_ORDER_VALUE, as_of=date(2026, 2, 1), value=Decimal("9"))
    result = goal_progress(goal, as_of=date(2026, 2, 1))
    assert result.status == GoalStatus.NO_DATA
    assert result.progress is None


def test_uses_the_latest_figure_up_to_the_date_asked_and_skips_empty_values():
    goal = GoalFactory()
    retention(date(2026, 2, 1), "0.41")
    retention(date(2026, 3, 1), "0.44")
    KpiSnapshotFactory(kpi=Kpi.RETENTION_RATE, as_of=date(2026, 3, 15), value=None)
    assert goal_progress(goal, as_of=date(2026, 2, 20)).current == Decimal("0.41")
    assert goal_progress(goal, as_of=date(2026, 3, 20)).current == Decimal("0.44")


def test_after_the_deadline_the_deadline_figure_decides():
    goal = GoalFactory()
    retention(date(2026, 6, 30), "0.44")
    retention(date(2026, 8, 1), "0.50")  # too late
    result = goal_progress(goal, as_of=date(2026, 9, 1))
    assert result.current == Decimal("0.44")
    assert result.status == GoalStatus.BEHIND


def test_all_goals_in_one_query(django_assert_num_queries):
    for _ in range(5):
        GoalFactory()
    retention(date(2026, 3, 1), "0.43")
    with django_assert_num_queries(1):
        results = goals_progress(as_of=date(2026, 3, 1))
    assert [r.current for r in results] == [Decimal("0.43")] * 5


def test_elapsed_share_is_clamped():
    assert elapsed_share(baseline_on=START, deadline=DEADLINE, on=date(2025, 1, 1)) == 0
    assert elapsed_share(baseline_on=START, deadline=DEADLINE, on=date(2027, 1, 1)) == 1


@pytest.mark.parametrize(
    ("baseline", "change", "target"),
    [
        ("0.40", "+15%", "0.46"),
        ("50", "-10%", "45"),
        ("0.40", "+0.05", "0.45"),
        ("10", "- 2", "8"),
        ("0.40", "+1,5%", "0.406"),
    ],
)
def test_target_from_change(baseline, change, target):
    assert target_from_change(baseline=Decimal(baseline), change=change) == Decimal(target)


@pytest.mark.parametrize("change", ["15%", "+abc", "", "+%"])
def test_target_from_change_rejects_unclear_input(change):
    with pytest.raises(ValueError):
        target_from_change(baseline=Decimal("1"), change=change)


# ---------------------------------------------------------------------------- admin


def goal_data(**values) -> dict:
    data = {
        "name": "Retention up",
        "kpi": Kpi.RETENTION_RATE,
        "baseline": "",
        "baseline_on": "",
        "target": "",
        "target_change": "",
        "deadline": "2026-10-01",
        "owner": "",
        "notes": "",
    }
    data.update(values)
    return data


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


def test_new_goal_defaults_owner_to_the_current_user(analyst_client, analyst):
    response = analyst_client.get("/admin/analytics/goal/add/")
    assert response.context["adminform"].form.initial["owner"] == analyst.pk


def test_goal_baseline_prefilled_from_latest_snapshot_and_target_from_change(
    analyst_client, analyst
):
    retention(date(2026, 3, 1), "0.40")
    retention(date(2026, 3, 31), "0.42")
    response = analyst_client.post(
        "/admin/analytics/goal/add/", goal_data(target_change="+15%", owner=analyst.pk)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    from analytics.models import Goal

    goal = Goal.objects.get()
    assert goal.baseline == Decimal("0.42")
    assert goal.baseline_on == date(2026, 3, 31)
    assert goal.target == Decimal("0.483")
    assert goal.owner == analyst


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"baseline": "0.4", "baseline_on": "2026-01-01"}, "target", "Enter a target"),
        (
            {
                "baseline": "0.4",
                "baseline_on": "2026-01-01",
                "target": "0.5",
                "target_change": "+5%",
            },
            "target_change",
            "either a target or a change",
        ),
        (
            {"baseline": "0.4", "baseline_on": "2026-01-01", "target_change": "15%"},
            "target_change",
            "Start the change with + or -",
        ),
        (
            {"baseline": "0.4", "baseline_on": "2026-01-01", "target": "0.3"},
            "target",
            "Higher is better",
        ),
        (
            {
                "kpi": Kpi.CHURN_RATE,
                "baseline": "0.2",
                "baseline_on": "2026-01-01",
                "target": "0.3",
            },
            "target",
            "Lower is better",
        ),
        (
            {"baseline": "0.4", "baseline_on": "2026-12-01", "target": "0.5"},
            "deadline",
            "after the baseline date",
        ),
        ({"target": "0.5"}, "baseline", "no figure for this KPI yet"),
    ],
)
def test_goal_form_errors(analyst_client, analyst, values, field, message):
    response = analyst_client.post(
        "/admin/analytics/goal/add/", goal_data(owner=analyst.pk, **values)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors


def test_goal_list_shows_status_without_a_query_per_goal(
    analyst_client, django_assert_max_num_queries
):
    from tests.analytics.factories import PipelineRunFactory

    PipelineRunFactory(as_of=date(2026, 4, 1))
    retention(date(2026, 4, 1), "0.43")
    for _ in range(3):
        GoalFactory()
    with django_assert_max_num_queries(13):  # 12 + the header's staff links (one, any list)
        response = analyst_client.get("/admin/analytics/goal/")
    assert response.content.decode().count("On track") == 3


def test_demo_definitions_are_idempotent_and_take_baselines_from_snapshots():
    import io

    from django.contrib.auth import get_user_model

    from analytics.demo_definitions import seed_definitions
    from analytics.models import Goal, Segment

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    retention(date(2026, 1, 1), "0.30")  # older than the 60-day window
    retention(date(2026, 2, 15), "0.40")
    retention(date(2026, 3, 31), "0.42")
    out = io.StringIO()
    assert seed_definitions(rng=None, stdout=out) == {"segments": 4, "goals": 2}
    assert "4 segment(s) and 2 goal(s) created" in out.getvalue()
    assert seed_definitions(rng=None, stdout=io.StringIO()) == {"segments": 0, "goals": 0}
    assert set(Segment.objects.values_list("slug", flat=True)) == {
        "champions",
        "at-risk-high-value",
        "lapsed-with-consent",
        "new-members",
    }
    assert Segment.objects.filter(created_by=admin, refreshed_at__isnull=False).count() == 4
    retention_goal = Goal.objects.get(kpi=Kpi.RETENTION_RATE)
    assert retention_goal.baseline == Decimal("0.40")
    assert retention_goal.baseline_on == date(2026, 2, 15)
    assert retention_goal.target == Decimal("0.46")
    assert retention_goal.owner == admin
    assert goal_progress(retention_goal, as_of=date(2026, 3, 31)).progress == pytest.approx(1 / 3)
    aov_goal = Goal.objects.get(kpi=Kpi.AVERAGE_ORDER_VALUE)
    assert aov_goal.target == aov_goal.baseline * Decimal("1.2")
