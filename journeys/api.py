"""REST API for events: POST /api/v1/events/ and POST /api/v1/events/batch/.

Thin: the serializers check types and formats, the member is looked up, and
journeys.services.ingest_event / ingest_events do the rest (validation of business rules,
points, stage). A repeated idempotency key answers 200 with the first answer.
"""

import re
from datetime import UTC, datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from members.api_auth import HasPermission

from . import selectors, services
from .exceptions import InvalidEvent
from .models import TouchpointChannel
from .services import MAX_BATCH_SIZE, EventData

ADD_EVENT = "journeys.add_customerevent"
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
BIGINT_MAX = 2**63 - 1


def _has_null_character(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_null_character(k) or _has_null_character(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_null_character(v) for v in value)
    return False


# The identifiers an API call names its member by (at least one; all must agree). Other apps'
# APIs that act for a member subclass it. (A comment, not a docstring: the API schema would
# show a docstring as every subclass's description.)
class MemberIdentitySerializer(serializers.Serializer):
    member_id = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    member_number = serializers.CharField(required=False, allow_blank=True, max_length=12)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def validate(self, attrs):
        if (
            attrs.get("member_id") is None
            and not attrs.get("member_number")
            and not attrs.get("external_id")
        ):
            raise serializers.ValidationError(
                {"member_id": ["Give member_id, member_number or external_id."]}
            )
        return attrs


class EventSerializer(MemberIdentitySerializer):
    event_type = serializers.CharField(max_length=50)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="ISO 8601 with a time zone; the time of receipt when omitted"
    )
    idempotency_key = serializers.CharField(max_length=190)
    channel = serializers.ChoiceField(TouchpointChannel.choices, required=False, allow_blank=True)
    touchpoint = serializers.SlugField(
        required=False, allow_blank=True, max_length=100, help_text="A touchpoint's slug"
    )
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, allow_null=True
    )
    currency = serializers.CharField(required=False, allow_blank=True, max_length=3)
    order_id = serializers.CharField(required=False, allow_blank=True, max_length=100)
    properties = serializers.DictField(required=False)

    def validate_occurred_at(self, value):
        if value < EARLIEST:
            raise serializers.ValidationError("This is too far in the past.")
        return value

    def validate_properties(self, value):
        if _has_null_character(value):
            raise serializers.ValidationError("Text may not contain NUL characters.")
        return value


class BreakdownLineSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField(allow_null=True)
    rule_name = serializers.CharField()
    points = serializers.IntegerField()
    note = serializers.CharField()


class StageSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class EventAnswerSerializer(serializers.Serializer):
    """Documentation of the answer (the stored first answer is returned as is)."""

    event_id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    member_number = serializers.CharField()
    event_type = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    points_awarded = serializers.IntegerField()
    breakdown = BreakdownLineSerializer(many=True)
    balance = serializers.IntegerField()
    stage = StageSerializer(allow_null=True)
    stage_changed = serializers.BooleanField()


class BatchRequestSerializer(serializers.Serializer):
    events = EventSerializer(many=True, help_text=f"At most {MAX_BATCH_SIZE} events")


class BatchItemSerializer(EventAnswerSerializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(["created", "duplicate", "error"])
    errors = serializers.DictField(required=False)


class BatchAnswerSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = serializers.IntegerField()
    results = BatchItemSerializer(many=True)


class _BatchEnvelope(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.JSONField(), allow_empty=False, max_length=MAX_BATCH_SIZE
    )


def _identity(attrs: dict) -> tuple:
    return (
        attrs.get("member_id"),
        attrs.get("member_number") or "",
        attrs.get("external_id") or "",
    )


def unknown_member(attrs: dict) -> dict[str, list[str]]:
    """The 400 answer's field errors when no member matches the identifiers given."""
    given = [name for name in selectors.MEMBER_IDENTIFIERS if attrs.get(name) not in (None, "")]
    message = (
        "No member matches these identifiers together."
        if len(given) > 1
        else "No member has this identifier."
    )
    return {name: [message] for name in given}


def event_data(attrs: dict, member, received_at) -> EventData:
    return EventData(
        member=member,
        event_type=attrs["event_type"],
        occurred_at=attrs.get("occurred_at") or received_at,
        idempotency_key=attrs["idempotency_key"],
        channel=attrs.get("channel", ""),
        touchpoint=attrs.get("touchpoint") or None,
        amount=attrs.get("amount"),
        currency=attrs.get("currency", ""),
        order_id=attrs.get("order_id", ""),
        properties=attrs.get("properties"),
    )


# -- the batch's lean validation -------------------------------------------------------------
#
# EventSerializer costs more per item than everything else a batch does per event. Items whose
# every field is of the plain, valid kind (ASCII-safe text within its length, an integer
# member id, a known channel, ...) are checked here instead, giving exactly the attributes the
# serializer would; anything else (every invalid item included) goes through the serializer,
# so error answers are the serializer's own.

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+\Z")
_CHANNELS = frozenset(TouchpointChannel.values)
_TEXT_FIELDS = (  # (name, max length, blank allowed)
    ("member_number", 12, True),
    ("external_id", 64, True),
    ("event_type", 50, False),
    ("idempotency_key", 190, False),
    ("currency", 3, True),
    ("order_id", 100, True),
)


class _Slow(Exception):
    """This item takes the serializer."""


def _text(value, max_length: int, blank: bool) -> str:
    if type(value) is not str:
        raise _Slow
    value = value.strip()
    if (not value and not blank) or len(value) > max_length or _BAD_TEXT.search(value):
        raise _Slow
    return value


def _lean_attrs(item: dict, fields) -> dict:
    """The serializer's validated attributes for a plain valid item; raises _Slow otherwise."""
    attrs = {}
    if "member_id" in item:
        value = item["member_id"]
        if type(value) is not int or not 1 <= value <= BIGINT_MAX:
            raise _Slow
        attrs["member_id"] = value
    for name, max_length, blank in _TEXT_FIELDS:
        if name in item:
            attrs[name] = _text(item[name], max_length, blank)
        elif not blank:
            raise _Slow  # required
    if "channel" in item:
        value = item["channel"]
        if type(value) is not str or (value and value not in _CHANNELS):
            raise _Slow
        attrs["channel"] = value
    if "touchpoint" in item:
        value = _text(item["touchpoint"], 100, True)
        if value and not _SLUG.match(value):
            raise _Slow
        attrs["touchpoint"] = value
    if "properties" in item:
        value = item["properties"]
        if type(value) is not dict:
            raise _Slow
        value = {str(k): v for k, v in value.items()}
        if _has_null_character(value):
            raise _Slow
        attrs["properties"] = value
    for name in ("occurred_at", "amount"):  # parsed by the serializer's own fields
        if name in item:
            try:
                attrs[name] = fields[name].run_validation(item[name])
            except serializers.ValidationError:
                raise _Slow from None
    if "occurred_at" in attrs and attrs["occurred_at"] < EARLIEST:
        raise _Slow
    if (
        attrs.get("member_id") is None
        and not attrs.get("member_number")
        and not attrs.get("external_id")
    ):
        raise _Slow
    return attrs


_lean_fields = None


def lean_event_attrs(data) -> dict | None:
    """A single event's validated attributes when `data` is a plain valid JSON object (exactly
    what EventSerializer would give), else None: then the serializer decides."""
    global _lean_fields
    if type(data) is not dict:
        return None
    if _lean_fields is None:  # built once per process; only read afterwards
        _lean_fields = EventSerializer().fields
    try:
        return _lean_attrs(data, _lean_fields)
    except _Slow:
        return None


def _single_attrs(data) -> dict:
    """A single event's validated attributes: the lean check for a plain valid JSON object,
    else the serializer (which raises the 400 with its field errors)."""
    attrs = lean_event_attrs(data)
    if attrs is not None:
        return attrs
    serializer = EventSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _batch_items(data) -> list | None:
    """The batch's items when the envelope is plainly right (else None: the envelope
    serializer answers)."""
    if not isinstance(data, dict):
        return None
    items = data.get("events")
    if type(items) is not list or not 1 <= len(items) <= MAX_BATCH_SIZE:
        return None
    return items


class _JsonOnly(DefaultContentNegotiation):
    """Events are answered in JSON whatever the Accept header says: no negotiation to run for
    every event."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class EventViewSet(viewsets.GenericViewSet):
    """Customer events from shops, apps, tills and CRMs."""

    serializer_class = EventSerializer
    permission_classes = [HasPermission.of(ADD_EVENT)]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JsonOnly

    @extend_schema(
        request=EventSerializer,
        responses={
            201: EventAnswerSerializer,
            200: OpenApiResponse(EventAnswerSerializer, description="Repeated idempotency key"),
        },
    )
    def create(self, request):
        attrs = _single_attrs(request.data)
        member, version = selectors.find_member_and_version(
            member_id=attrs.get("member_id"),
            member_number=attrs.get("member_number") or "",
            external_id=attrs.get("external_id") or "",
        )
        if member is None:
            return Response(unknown_member(attrs), status=status.HTTP_400_BAD_REQUEST)
        event = event_data(attrs, member, timezone.now())
        try:
            result = services.ingest_event(**vars(event), settings_version=version)
        except InvalidEvent as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            result.response,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(request=BatchRequestSerializer, responses={200: BatchAnswerSerializer})
    @action(detail=False, methods=["post"], url_path="batch")
    def batch(self, request):
        items = _batch_items(request.data)
        if items is None:
            envelope = _BatchEnvelope(data=request.data)
            envelope.is_valid(raise_exception=True)
            items = envelope.validated_data["events"]
        received_at = timezone.now()
        answers: list[dict | None] = [None] * len(items)
        valid: list[tuple[int, dict]] = []
        item_serializer = EventSerializer()  # one instance: building its fields is not free
        fields = item_serializer.fields
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                answers[index] = {"errors": {"non_field_errors": ["Expected an object."]}}
                continue
            try:
                valid.append((index, _lean_attrs(item, fields)))
                continue
            except _Slow:
                pass
            try:
                valid.append((index, item_serializer.run_validation(item)))
            except serializers.ValidationError as exc:
                answers[index] = {"errors": serializers.as_serializer_error(exc)}
        members = selectors.find_members(attrs for _, attrs in valid)
        to_ingest: list[tuple[int, EventData]] = []
        for index, attrs in valid:
            member = members.get(_identity(attrs))
            if member is None:
                answers[index] = {"errors": unknown_member(attrs)}
            else:
                to_ingest.append((index, event_data(attrs, member, received_at)))
        outcomes = services.ingest_events(events=[event for _, event in to_ingest])
        for (index, _), outcome in zip(to_ingest, outcomes, strict=True):
            if isinstance(outcome, InvalidEvent):
                answers[index] = {"errors": outcome.errors}
            else:
                kind = "created" if outcome.created else "duplicate"
                answers[index] = {"status": kind, **outcome.response}
        results = []
        counts = {"created": 0, "duplicate": 0, "error": 0}
        for index, answer in enumerate(answers):
            kind = answer.get("status", "error")
            counts[kind] += 1
            results.append({"index": index, "status": kind, **answer})
        return Response(
            {
                "created": counts["created"],
                "duplicates": counts["duplicate"],
                "errors": counts["error"],
                "results": results,
            }
        )
