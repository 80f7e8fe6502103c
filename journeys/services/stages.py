"""Stage rules: where each member stands in the journey and every move between stages.

The rules are applied by one engine (JourneyConfig) to an in-memory JourneyState, so the
same logic serves a single event (counts come from the database), a bulk import (counts come
from the imported history in memory) and the nightly inactivity pass.

- Event rules move a member forward only: to the highest-ordered lifecycle stage whose rule
  the event satisfies, if that stage is further than the current one.
- Inactivity rules move a member into an inactivity stage `days` after their last event; the
  move is dated when the threshold was crossed, however late the job runs, so time in stage
  stays true.
- A newer event ends an inactivity stage: the member goes to the stage the event earns or,
  failing that, back to the lifecycle stage they were in before.
"""

import bisect
import functools
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from rewards.models import PointsAccount
from rewards.services import sql as statements
from rewards.services.bulk import copy_text
from rewards.services.inserts import defer_row

from ..defaults import seed_stages
from ..models import (
    ADVOCACY_EVENT_TYPES,
    EVENT_RULE_KINDS,
    CustomerEvent,
    EventType,
    JourneyStage,
    MemberJourney,
    StageKind,
    StageRule,
    StageRuleKind,
    StageTransition,
    TransitionCause,
)

logger = logging.getLogger(__name__)

# count(event_types, since (exclusive), until (inclusive)) -> events, the current one included
Counter = Callable[[tuple[str, ...], datetime, datetime], int]
PURCHASE_TYPES = (EventType.PURCHASE.value,)
ADVOCACY_TYPES = tuple(t.value for t in ADVOCACY_EVENT_TYPES)
COUNTED_TYPES = PURCHASE_TYPES + ADVOCACY_TYPES


@dataclass(frozen=True)
class Rule:
    id: int
    stage_id: int
    kind: str
    event_type: str
    count: int | None
    window_days: int | None
    days: int | None


@dataclass
class JourneyState:
    stage_id: int | None = None
    entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    last_lifecycle_stage_id: int | None = None


@dataclass(frozen=True)
class Move:
    from_stage_id: int | None
    to_stage_id: int
    at: datetime
    cause: str
    rule_id: int | None


class JourneyConfig:
    """The stages and active rules, loaded once per request, batch or job."""

    def __init__(self, stages: Iterable[JourneyStage], rules: Iterable[Rule]):
        self.stages: dict[int, JourneyStage] = {s.pk: s for s in stages}
        rules = [r for r in rules if r.stage_id in self.stages]
        order = {pk: stage.order for pk, stage in self.stages.items()}
        self.event_rules = sorted(
            (
                r
                for r in rules
                if r.kind in EVENT_RULE_KINDS
                and self.stages[r.stage_id].kind == StageKind.LIFECYCLE
            ),
            key=lambda r: (-order[r.stage_id], r.id),
        )
        self.inactivity_rules = sorted(
            (
                r
                for r in rules
                if r.kind == StageRuleKind.INACTIVITY_DAYS
                and self.stages[r.stage_id].kind == StageKind.INACTIVITY
                and r.days
            ),
            key=lambda r: (r.days, r.id),
        )
        self._inactivity_days: dict[int, int] = {}
        for rule in self.inactivity_rules:
            self._inactivity_days[rule.stage_id] = max(
                rule.days, self._inactivity_days.get(rule.stage_id, 0)
            )

    @classmethod
    def load(cls) -> "JourneyConfig":
        """Stages and their active rules in one query."""
        rows = JourneyStage.objects.values(
            "id",
            "order",
            "name",
            "slug",
            "kind",
            "rules__id",
            "rules__kind",
            "rules__event_type",
            "rules__count",
            "rules__window_days",
            "rules__days",
            "rules__active",
        )
        stages: dict[int, JourneyStage] = {}
        rules = []
        for row in rows:
            if row["id"] not in stages:
                stages[row["id"]] = JourneyStage(
                    id=row["id"],
                    order=row["order"],
                    name=row["name"],
                    slug=row["slug"],
                    kind=row["kind"],
                )
            if row["rules__id"] is not None and row["rules__active"]:
                rules.append(
                    Rule(
                        id=row["rules__id"],
                        stage_id=row["id"],
                        kind=row["rules__kind"],
                        event_type=row["rules__event_type"],
                        count=row["rules__count"],
                        window_days=row["rules__window_days"],
                        days=row["rules__days"],
                    )
                )
        return cls(stages.values(), rules)

    def stage(self, stage_id: int | None) -> JourneyStage | None:
        return self.stages.get(stage_id) if stage_id is not None else None

    # -- the engine ------------------------------------------------------------------------

    def _move(self, state: JourneyState, to_stage_id: int, at: datetime, cause, rule_id) -> Move:
        current = self.stage(state.stage_id)
        if current is not None and current.kind == StageKind.LIFECYCLE:
            state.last_lifecycle_stage_id = current.pk
        if state.entered_at is not None and at < state.entered_at:
            at = state.entered_at  # events may arrive out of order; history never runs back
        move = Move(state.stage_id, to_stage_id, at, cause, rule_id)
        state.stage_id = to_stage_id
        state.entered_at = at
        return move

    def catch_up_inactivity(self, state: JourneyState, until: datetime) -> list[Move]:
        """Inactivity moves due by `until`, each dated when its threshold was crossed."""
        moves: list[Move] = []
        if state.stage_id is None or state.last_activity_at is None:
            return moves
        for rule in self.inactivity_rules:
            threshold = state.last_activity_at + timedelta(days=rule.days)
            if threshold > until:
                break
            if state.stage_id == rule.stage_id:
                continue
            if self._inactivity_days.get(state.stage_id, 0) >= rule.days:
                continue  # already in this or a deeper inactivity stage
            moves.append(
                self._move(state, rule.stage_id, threshold, TransitionCause.INACTIVITY, rule.id)
            )
        return moves

    def on_event(
        self, state: JourneyState, event_type: str, occurred_at: datetime, count: Counter
    ) -> list[Move]:
        """Apply one event to the state; returns the moves it caused (inactivity first)."""
        moves = self.catch_up_inactivity(state, occurred_at)
        current = self.stage(state.stage_id)
        inactive = current is not None and current.kind == StageKind.INACTIVITY
        newer = state.last_activity_at is None or occurred_at > state.last_activity_at
        if state.last_activity_at is None or occurred_at > state.last_activity_at:
            state.last_activity_at = occurred_at
        if inactive and not newer:
            return moves  # old news does not end an inactivity stage
        floor = self.stage(state.last_lifecycle_stage_id) if inactive else current
        matched = None
        for rule in self.event_rules:
            if floor is not None and self.stages[rule.stage_id].order <= floor.order:
                break
            if self._matches(rule, event_type, occurred_at, count):
                matched = rule
                break
        if matched is not None:
            moves.append(
                self._move(state, matched.stage_id, occurred_at, TransitionCause.EVENT, matched.id)
            )
        elif inactive and floor is not None:
            moves.append(self._move(state, floor.pk, occurred_at, TransitionCause.RETURNED, None))
        return moves

    @staticmethod
    def _matches(rule: Rule, event_type: str, at: datetime, count: Counter) -> bool:
        if rule.kind == StageRuleKind.ON_EVENT_TYPE:
            return rule.event_type == event_type
        if rule.kind == StageRuleKind.PURCHASE_COUNT:
            if event_type not in PURCHASE_TYPES:
                return False
            since = at - timedelta(days=rule.window_days)
            return count(PURCHASE_TYPES, since, at) >= rule.count
        if rule.kind == StageRuleKind.ADVOCACY_EVENTS:
            if event_type not in ADVOCACY_TYPES:
                return False
            since = at - timedelta(days=rule.window_days)
            return count(ADVOCACY_TYPES, since, at) >= rule.count
        return False


# -- counters --------------------------------------------------------------------------------


def database_counter(member_id: int) -> Counter:
    """Counts the member's stored events plus the one being ingested (not stored yet)."""
    cache: dict[tuple, int] = {}

    def count(types: tuple[str, ...], since: datetime, until: datetime) -> int:
        key = (types, since, until)
        if key not in cache:
            row = statements.fetchone(_COUNT_SQL, [member_id, list(types), since, until])
            cache[key] = row[0] + 1
        return cache[key]

    return count


_COUNT_SQL = f"""SELECT count(*) FROM {CustomerEvent._meta.db_table}
WHERE member_id = %s AND event_type = ANY(%s) AND occurred_at > %s AND occurred_at <= %s"""  # noqa: S608


class HistoryCounter:
    """Counts from a member's history held in memory (bulk paths): sorted times per type."""

    def __init__(self, times_by_type: dict[str, list[datetime]]):
        self.times = times_by_type

    def __call__(self, types: tuple[str, ...], since: datetime, until: datetime) -> int:
        total = 0
        for event_type in types:
            times = self.times.get(event_type)
            if times:
                total += bisect.bisect_right(times, until) - bisect.bisect_right(times, since)
        return total


# -- persistence -----------------------------------------------------------------------------


@dataclass
class JourneyLock:
    """An event's hold on the member's journey: the row's id, the state before the event, the
    member's points balance as the transaction sees it, and the id the event's row will have
    (drawn from the events' sequence in the same statement: the event can then be written
    with the transaction's last round trip, rewards.services.sql.atomic)."""

    journey_id: int
    state: JourneyState
    balance: int
    event_id: int | None


@functools.cache
def _lock_statements() -> tuple[str, str]:
    next_id = f"nextval('{statements.sequence(CustomerEvent._meta.db_table)}')"
    lock = f"""
UPDATE journeys_memberjourney AS j
SET last_activity_at = GREATEST(j.last_activity_at, %(at)s)
FROM (
    SELECT id, last_activity_at FROM journeys_memberjourney WHERE member_id = %(member)s
    FOR UPDATE
) AS old
WHERE j.id = old.id
RETURNING j.id, j.stage_id, j.entered_at, old.last_activity_at, j.last_lifecycle_stage_id,
    (SELECT balance FROM rewards_pointsaccount WHERE member_id = %(member)s), {next_id}
"""  # noqa: S608
    create = f"""
INSERT INTO journeys_memberjourney (member_id, last_activity_at) VALUES (%(member)s, %(at)s)
ON CONFLICT (member_id) DO NOTHING
RETURNING id, (SELECT balance FROM rewards_pointsaccount WHERE member_id = %(member)s),
    {next_id}
"""  # noqa: S608
    return lock, create


def lock_journey_for_event(*, member_id: int, activity_at: datetime) -> JourneyLock:
    """Lock (creating if needed) the member's journey row until the transaction ends and
    record the activity, in one statement that also reads the balance and draws the event's
    id."""
    if connection.vendor != "postgresql":
        journey_id, state = _lock_journey_portable(member_id, activity_at)
        balance = (
            PointsAccount.objects.filter(member_id=member_id)
            .values_list("balance", flat=True)
            .first()
        )
        return JourneyLock(journey_id, state, balance or 0, None)
    lock, create = _lock_statements()
    params = {"member": member_id, "at": activity_at}
    with connection.cursor() as cursor:
        for _ in range(2):
            statements.execute(cursor, lock, params)
            row = cursor.fetchone()
            if row is not None:
                state = JourneyState(row[1], row[2], row[3], row[4])
                return JourneyLock(row[0], state, row[5] or 0, row[6])
            statements.execute(cursor, create, params)
            row = cursor.fetchone()
            if row is not None:
                return JourneyLock(row[0], JourneyState(), row[1] or 0, row[2])
            # A concurrent first event created the row; lock it on the next round.
    raise RuntimeError(f"Could not lock the journey of member {member_id}")


def _lock_journey_portable(member_id: int, activity_at: datetime) -> tuple[int, JourneyState]:
    MemberJourney.objects.get_or_create(member_id=member_id)
    journey = MemberJourney.objects.select_for_update().get(member_id=member_id)
    state = JourneyState(
        journey.stage_id,
        journey.entered_at,
        journey.last_activity_at,
        journey.last_lifecycle_stage_id,
    )
    if journey.last_activity_at is None or activity_at > journey.last_activity_at:
        MemberJourney.objects.filter(pk=journey.pk).update(last_activity_at=activity_at)
    return journey.pk, state


def transition_values(
    member_id: int, moves: Iterable[Move], event_id: int | None = None
) -> list[dict]:
    """The transition rows' fields for the moves; the event is the cause of all but
    inactivity moves."""
    return [
        {
            "member_id": member_id,
            "from_stage_id": move.from_stage_id,
            "to_stage_id": move.to_stage_id,
            "at": move.at,
            "cause": move.cause,
            "rule_id": move.rule_id,
            "event_id": event_id if move.cause != TransitionCause.INACTIVITY else None,
        }
        for move in moves
    ]


def transitions_for(
    member_id: int, moves: Iterable[Move], event_id: int | None = None
) -> list[StageTransition]:
    return [StageTransition(**values) for values in transition_values(member_id, moves, event_id)]


def save_moves(
    *,
    journey_id: int,
    member_id: int,
    state: JourneyState,
    moves: list[Move],
    event_id: int | None = None,
) -> None:
    """Write the moves and the journey's new state (with the next statement, inside
    rewards.services.sql.write_behind)."""
    if not moves:
        return
    statements.defer(
        _MOVE_SQL, [state.stage_id, state.entered_at, state.last_lifecycle_stage_id, journey_id]
    )
    for values in transition_values(member_id, moves, event_id):
        defer_row(StageTransition, **values)


_MOVE_SQL = f"""UPDATE {MemberJourney._meta.db_table}
SET stage_id = %s, entered_at = %s, last_lifecycle_stage_id = %s WHERE id = %s"""  # noqa: S608


# -- bulk writes (imports, nightly) ----------------------------------------------------------

_STATE_TABLE = "journeys_bulk_state"
_STATE_COLUMNS = (
    "member_id",
    "stage_id",
    "entered_at",
    "last_activity_at",
    "last_lifecycle_stage_id",
)
_TRANSITION_COLUMNS = (
    "member_id",
    "from_stage_id",
    "to_stage_id",
    "at",
    "cause",
    "event_id",
    "rule_id",
)


def _optional(value) -> str:
    return "" if value is None else str(value)


class BulkWriter:
    """Collects journey states and moves as COPY text, then writes them in three statements."""

    def __init__(self) -> None:
        self.states = io.StringIO()
        self.transitions = io.StringIO()
        self.moved = 0
        self.members = 0

    def add(self, member_id: int, moves: list[Move], event_id: int | None = None) -> None:
        for move in moves:
            cause_event = event_id if move.cause != TransitionCause.INACTIVITY else None
            self.transitions.write(
                f"{member_id},{_optional(move.from_stage_id)},{move.to_stage_id},"
                f"{move.at.isoformat()},{move.cause},{_optional(cause_event)},"
                f"{_optional(move.rule_id)}\n"
            )
        self.moved += len(moves)

    def state(self, member_id: int, state: JourneyState) -> None:
        self.states.write(
            f"{member_id},{_optional(state.stage_id)},"
            f"{state.entered_at.isoformat() if state.entered_at else ''},"
            f"{state.last_activity_at.isoformat() if state.last_activity_at else ''},"
            f"{_optional(state.last_lifecycle_stage_id)}\n"
        )
        self.members += 1

    def write(self) -> int:
        """Upsert the journeys and append the transitions; returns the number of transitions."""
        if self.members:
            with connection.cursor() as cursor:
                cursor.execute(_STATE_TABLE_SQL)
                cursor.execute(f"TRUNCATE {_STATE_TABLE}")
            copy_text(_STATE_TABLE, _STATE_COLUMNS, self.states)
            with connection.cursor() as cursor:
                cursor.execute(_UPSERT_STATES_SQL)
        if self.moved:
            copy_text("journeys_stagetransition", _TRANSITION_COLUMNS, self.transitions)
        return self.moved


_STATE_TABLE_SQL = """
CREATE TEMPORARY TABLE IF NOT EXISTS journeys_bulk_state AS
SELECT member_id, stage_id, entered_at, last_activity_at, last_lifecycle_stage_id
FROM journeys_memberjourney WITH NO DATA
"""
_UPSERT_STATES_SQL = """
INSERT INTO journeys_memberjourney
    (member_id, stage_id, entered_at, last_activity_at, last_lifecycle_stage_id)
SELECT member_id, stage_id, entered_at, last_activity_at, last_lifecycle_stage_id
FROM journeys_bulk_state ORDER BY member_id
ON CONFLICT (member_id) DO UPDATE SET
    stage_id = EXCLUDED.stage_id,
    entered_at = EXCLUDED.entered_at,
    last_activity_at = EXCLUDED.last_activity_at,
    last_lifecycle_stage_id = EXCLUDED.last_lifecycle_stage_id
"""


def replay_events(
    *,
    config: JourneyConfig,
    events: list[tuple[int, int, str, datetime]],
    as_of: datetime,
) -> int:
    """Apply new events (id, member_id, event_type, occurred_at), already stored, to their
    members' journeys in time order, then inactivity up to `as_of`; written in bulk. Returns
    the number of transitions. The caller holds the transaction (PostgreSQL only)."""
    if not events:
        return 0
    by_member: dict[int, list[tuple[int, int, str, datetime]]] = {}
    for event in sorted(events, key=lambda e: (e[1], e[3], e[0])):
        by_member.setdefault(event[1], []).append(event)
    journeys = _locked_journeys(list(by_member))

    # Counting rules need each member's history: stored for members seen before, otherwise
    # just the new events.
    history: dict[int, dict[str, list[datetime]]] = {m: {} for m in by_member}
    known = [m for m in by_member if m in journeys]
    if known:
        rows = (
            CustomerEvent.objects.filter(member_id__in=known, event_type__in=COUNTED_TYPES)
            .order_by("member_id", "occurred_at")
            .values_list("member_id", "event_type", "occurred_at")
        )
        for member_id, event_type, occurred_at in rows.iterator(chunk_size=20_000):
            history[member_id].setdefault(event_type, []).append(occurred_at)
    for member_id, member_events in by_member.items():
        if member_id not in journeys:
            times = history[member_id]
            for _, _, event_type, occurred_at in member_events:
                if event_type in COUNTED_TYPES:
                    times.setdefault(event_type, []).append(occurred_at)

    writer = BulkWriter()
    for member_id, member_events in by_member.items():
        state = journeys.get(member_id) or JourneyState()
        counter = HistoryCounter(history[member_id])
        for event_id, _, event_type, occurred_at in member_events:
            writer.add(
                member_id, config.on_event(state, event_type, occurred_at, counter), event_id
            )
        writer.add(member_id, config.catch_up_inactivity(state, as_of))
        writer.state(member_id, state)
    return writer.write()


def _locked_journeys(member_ids: list[int]) -> dict[int, JourneyState]:
    rows = (
        MemberJourney.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("member_id")
        .values_list(
            "member_id", "stage_id", "entered_at", "last_activity_at", "last_lifecycle_stage_id"
        )
    )
    return {row[0]: JourneyState(*row[1:]) for row in rows}


# -- nightly ---------------------------------------------------------------------------------


def evaluate_stages(*, as_of: datetime | None = None, chunk_size: int = 5000) -> int:
    """Move members who have gone quiet into the inactivity stages due by `as_of`; returns the
    number of transitions. Running it again for the same moment moves nobody."""
    as_of = as_of or timezone.now()
    config = JourneyConfig.load()
    if not config.inactivity_rules:
        return 0
    shortest = config.inactivity_rules[0].days
    deepest = max(config.inactivity_rules, key=lambda r: (r.days, r.id)).stage_id
    candidates = list(
        MemberJourney.objects.filter(
            stage__isnull=False, last_activity_at__lte=as_of - timedelta(days=shortest)
        )
        .exclude(stage_id=deepest)
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )
    total = 0
    for start in range(0, len(candidates), chunk_size):
        total += _evaluate_chunk(config, candidates[start : start + chunk_size], as_of)
    if total:
        logger.info("evaluate_stages as of %s: %s transitions", as_of.isoformat(), total)
    return total


def _evaluate_chunk(config: JourneyConfig, member_ids: list[int], as_of: datetime) -> int:
    with transaction.atomic():
        if connection.vendor != "postgresql":
            return _evaluate_chunk_portable(config, member_ids, as_of)
        writer = BulkWriter()
        for member_id, state in _locked_journeys(member_ids).items():
            moves = config.catch_up_inactivity(state, as_of)
            if moves:
                writer.add(member_id, moves)
                writer.state(member_id, state)
        return writer.write()


def _evaluate_chunk_portable(config: JourneyConfig, member_ids: list[int], as_of) -> int:
    moved = 0
    for member_id, state in _locked_journeys(member_ids).items():
        moves = config.catch_up_inactivity(state, as_of)
        if moves:
            MemberJourney.objects.filter(member_id=member_id).update(
                stage_id=state.stage_id,
                entered_at=state.entered_at,
                last_lifecycle_stage_id=state.last_lifecycle_stage_id,
            )
            StageTransition.objects.bulk_create(transitions_for(member_id, moves))
            moved += len(moves)
    return moved


def seed_default_stages() -> int:
    """The default journey when the program has no stages yet (idempotent)."""
    with transaction.atomic():
        return seed_stages(JourneyStage, StageRule)


# -- set-based replay for new members (the import) -------------------------------------------


def purchase_replay_sql(config: JourneyConfig) -> "PurchaseReplay | None":
    """The stage engine as SQL, for purchase events of members with no journey yet (members an
    import has just enrolled), or None when the configuration needs the Python engine.

    Event rules that a purchase can satisfy (on_event_type purchase, purchases in a window)
    are CASE expressions over window counts; a member's lifecycle level is the running maximum
    of the stages matched so far; the inactivity moves a gap causes are a fixed list of steps
    (the same ones catch_up_inactivity takes from a lifecycle stage), each due `days` after
    the previous event. The result is the same as on_event and catch_up_inactivity applied in
    time order (tests/journeys/test_bulk_import.py compares the two)."""
    rules = [
        rule
        for rule in config.event_rules
        if (rule.kind == StageRuleKind.ON_EVENT_TYPE and rule.event_type in PURCHASE_TYPES)
        or (rule.kind == StageRuleKind.PURCHASE_COUNT and rule.count and rule.window_days)
    ]
    orders = {config.stages[rule.stage_id].order for rule in rules}
    if len(orders) != len({rule.stage_id for rule in rules}):
        return None  # two reachable lifecycle stages share an order: first-come decides
    steps: list[tuple[int, int, int | None, int]] = []  # (days, rule, from stage, to stage)
    state: int | None = None  # None: the lifecycle stage the member was in
    for rule in config.inactivity_rules:
        if state == rule.stage_id or config._inactivity_days.get(state, 0) >= rule.days:
            continue
        steps.append((rule.days, rule.id, state, rule.stage_id))
        state = rule.stage_id
    return PurchaseReplay(config, rules, steps)


class PurchaseReplay:
    def __init__(self, config: JourneyConfig, rules: list[Rule], steps: list[tuple]):
        self.config = config
        self.rules = rules
        self.steps = steps

    def run(self, *, events_table: str, as_of: datetime) -> int:
        """Write the transitions and journeys of the members in `events_table` (columns id,
        member_id, occurred_at: every event of each of those members); returns the number of
        transitions. The caller holds the transaction."""
        params: dict = {"as_of": as_of}
        windows = sorted({r.window_days for r in self.rules if r.kind != "on_event_type"})
        counts = []
        for days in windows:
            counts.append(
                f"count(*) OVER (PARTITION BY member_id ORDER BY occurred_at RANGE BETWEEN "
                f"interval '{int(days)} days' - interval '1 microsecond' PRECEDING AND "
                f"CURRENT ROW) AS c{int(days)}"
            )
        cases = []
        for rule in self.rules:
            if rule.kind == StageRuleKind.ON_EVENT_TYPE:
                cases.append(f"WHEN true THEN {int(rule.id)}")
            else:
                days, count = int(rule.window_days), int(rule.count)
                cases.append(f"WHEN c{days} >= {count} THEN {int(rule.id)}")
        matched = f"CASE {' '.join(cases)} END" if cases else "NULL::bigint"
        rule_map = (
            ", ".join(
                f"({int(r.id)}, {int(self.config.stages[r.stage_id].order)}, {int(r.stage_id)})"
                for r in self.rules
            )
            or "(NULL::bigint, NULL::int, NULL::bigint)"
        )
        steps = (
            ", ".join(
                f"({n}, {int(days)}, {int(rule_id)}, "
                f"{'NULL' if from_stage is None else int(from_stage)}::bigint, {int(to_stage)})"
                for n, (days, rule_id, from_stage, to_stage) in enumerate(self.steps, start=1)
            )
            or "(NULL::int, NULL::int, NULL::bigint, NULL::bigint, NULL::bigint)"
        )
        # The last inactivity stage a gap leads to, longest gap first.
        last_step = " ".join(
            f"WHEN g.occurred_at >= g.prev_at + interval '{int(days)} days' THEN {int(to_stage)}"
            for days, _, _, to_stage in reversed(self.steps)
        )
        last_step = f"CASE {last_step} END" if last_step else "NULL::bigint"
        lifecycle = [pk for pk, s in self.config.stages.items() if s.kind == StageKind.LIFECYCLE]
        params["lifecycle"] = lifecycle
        sql = f"""
        CREATE TEMPORARY TABLE journeys_replay_moves ON COMMIT DROP AS
        WITH counted AS (
            SELECT id, member_id, occurred_at{"".join(", " + c for c in counts)}
            FROM {events_table}
        ), matched AS (
            SELECT c.id, c.member_id, c.occurred_at, m.rule_id, m.ord, m.stage_id
            FROM (SELECT id, member_id, occurred_at, {matched} AS rule_id FROM counted) c
            LEFT JOIN (VALUES {rule_map}) AS m(rule_id, ord, stage_id) ON m.rule_id = c.rule_id
        ), g AS (
            SELECT id, member_id, occurred_at, rule_id, ord, stage_id,
                row_number() OVER w AS seq,
                count(*) OVER (PARTITION BY member_id) AS events,
                lag(occurred_at) OVER w AS prev_at,
                max(CASE WHEN rule_id IS NOT NULL THEN ARRAY[ord::bigint, stage_id] END)
                    OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS level_before,
                max(CASE WHEN rule_id IS NOT NULL THEN ARRAY[ord::bigint, stage_id] END)
                    OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS level_after
            FROM matched
            WINDOW w AS (PARTITION BY member_id ORDER BY occurred_at, id)
        ), h AS (
            SELECT g.*, {last_step} AS inactive_in,
                (stage_id IS NOT NULL AND (level_before IS NULL OR ord > level_before[1]))
                    AS moves_up
            FROM g
        )
        -- inactivity between two events
        SELECT h.member_id, h.seq, s.n AS sub,
            h.prev_at + s.days * interval '1 day' AS at,
            COALESCE(s.from_stage, h.level_before[2]) AS from_stage, s.to_stage,
            'inactivity'::text AS cause, NULL::bigint AS event_id, s.rule_id
        FROM h JOIN (VALUES {steps}) AS s(n, days, rule_id, from_stage, to_stage)
            ON h.prev_at + s.days * interval '1 day' <= h.occurred_at
        WHERE h.level_before IS NOT NULL
        UNION ALL
        -- the event: up to a stage its rule reaches, or back from inactivity
        SELECT member_id, seq, 1000, occurred_at,
            CASE WHEN level_before IS NOT NULL THEN COALESCE(inactive_in, level_before[2]) END,
            CASE WHEN moves_up THEN stage_id ELSE level_before[2] END,
            CASE WHEN moves_up THEN 'event' ELSE 'returned' END,
            id, CASE WHEN moves_up THEN rule_id END
        FROM h
        WHERE moves_up OR (level_before IS NOT NULL AND inactive_in IS NOT NULL)
        UNION ALL
        -- inactivity after the last event, up to as_of
        SELECT h.member_id, h.seq + 1, s.n, h.occurred_at + s.days * interval '1 day',
            COALESCE(s.from_stage, h.level_after[2]), s.to_stage, 'inactivity', NULL, s.rule_id
        FROM h JOIN (VALUES {steps}) AS s(n, days, rule_id, from_stage, to_stage)
            ON h.occurred_at + s.days * interval '1 day' <= %(as_of)s
        WHERE h.seq = h.events AND h.level_after IS NOT NULL
        """  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS journeys_replay_moves")
            cursor.execute(sql, params)
            cursor.execute(
                """
                INSERT INTO journeys_stagetransition
                    (member_id, from_stage_id, to_stage_id, at, cause, event_id, rule_id)
                SELECT member_id, from_stage, to_stage, at, cause, event_id, rule_id
                FROM journeys_replay_moves ORDER BY member_id, seq, sub
                """
            )
            moved = cursor.rowcount
            cursor.execute(
                f"""
                INSERT INTO journeys_memberjourney
                    (member_id, stage_id, entered_at, last_activity_at, last_lifecycle_stage_id)
                SELECT e.member_id, last_move.to_stage, last_move.at, e.last_at, left_stage.stage
                FROM (SELECT member_id, max(occurred_at) AS last_at FROM {events_table}
                      GROUP BY member_id) e
                LEFT JOIN (
                    SELECT DISTINCT ON (member_id) member_id, to_stage, at
                    FROM journeys_replay_moves ORDER BY member_id, seq DESC, sub DESC
                ) last_move ON last_move.member_id = e.member_id
                LEFT JOIN (
                    SELECT DISTINCT ON (member_id) member_id, from_stage AS stage
                    FROM journeys_replay_moves WHERE from_stage = ANY(%(lifecycle)s)
                    ORDER BY member_id, seq DESC, sub DESC
                ) left_stage ON left_stage.member_id = e.member_id
                ORDER BY e.member_id
                ON CONFLICT (member_id) DO UPDATE SET
                    stage_id = EXCLUDED.stage_id,
                    entered_at = EXCLUDED.entered_at,
                    last_activity_at = EXCLUDED.last_activity_at,
                    last_lifecycle_stage_id = EXCLUDED.last_lifecycle_stage_id
                """,  # noqa: S608
                params,
            )
            cursor.execute("DROP TABLE journeys_replay_moves")
        return moved
