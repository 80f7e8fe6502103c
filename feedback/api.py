"""REST API for surveys: read the active surveys with their questions, and
POST /api/v1/surveys/{id}/responses/ for kiosks and apps.

Thin: the member is named and found as in the events API (journeys.api), and
feedback.services.submit_response validates the answers (400 with an error per question id) and
decides the rest (409 with a code for answering twice, an expired invitation, a survey not open
to the member)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from journeys import selectors as journey_selectors
from journeys.api import MemberIdentitySerializer, unknown_member
from journeys.models import TouchpointChannel
from members.api_auth import HasPermission, StrictModelPermissions

from . import services
from .exceptions import InvalidAnswers
from .models import AnsweredVia, Question, Survey

ADD_RESPONSE = "feedback.add_surveyresponse"


class QuestionSerializer(serializers.ModelSerializer):
    options = serializers.ListField(source="option_list", child=serializers.CharField())
    scale = serializers.SerializerMethodField()

    class Meta:
        model = Question
        fields = ["id", "order", "text", "kind", "required", "options", "scale"]

    def get_scale(self, obj) -> list[int] | None:
        return list(obj.scale) if obj.scale else None


class SurveySerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "slug", "name", "kind", "title", "intro", "points", "questions"]


class ResponseRequestSerializer(MemberIdentitySerializer):
    answers = serializers.DictField(
        child=serializers.JSONField(),
        help_text='Answers by question id: {"12": 9, "13": "Fast delivery", "14": ["A", "B"]}',
    )
    channel = serializers.ChoiceField(TouchpointChannel.choices, required=False, allow_blank=True)
    touchpoint = serializers.SlugField(
        required=False, allow_blank=True, max_length=100, help_text="A touchpoint's slug"
    )


class ResponseAnswerSerializer(serializers.Serializer):
    response_id = serializers.IntegerField()
    survey_id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    member_number = serializers.CharField()
    submitted_at = serializers.DateTimeField()
    points_awarded = serializers.IntegerField()
    balance = serializers.IntegerField()
    follow_up = serializers.BooleanField()


class SurveyViewSet(viewsets.ReadOnlyModelViewSet):
    """Active surveys with their questions; answers are posted to .../responses/."""

    serializer_class = SurveySerializer
    lookup_value_regex = r"\d{1,18}"
    permission_classes = [StrictModelPermissions]
    queryset = Survey.objects.filter(active=True).prefetch_related("questions").order_by("pk")

    @extend_schema(
        request=ResponseRequestSerializer,
        responses={
            201: ResponseAnswerSerializer,
            400: OpenApiResponse(description="Field errors; answers keyed by question id"),
            409: OpenApiResponse(
                description="already_answered, invitation_expired, not_invited, "
                "survey_closed or member_closed"
            ),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="responses",
        permission_classes=[HasPermission.of(ADD_RESPONSE)],
    )
    def responses(self, request, pk=None):
        survey = get_object_or_404(Survey, pk=pk)
        data = ResponseRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        member = journey_selectors.find_member_for(attrs)
        if member is None:
            return Response(unknown_member(attrs), status=status.HTTP_400_BAD_REQUEST)
        touchpoint = None
        if attrs.get("touchpoint"):
            touchpoint = journey_selectors.touchpoints_by_slug([attrs["touchpoint"]]).get(
                attrs["touchpoint"]
            )
            if touchpoint is None:
                return Response(
                    {"touchpoint": [f"Unknown touchpoint '{attrs['touchpoint']}'."]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
        try:
            submitted = services.submit_response(
                survey=survey,
                member=member,
                answers=attrs["answers"],
                via=AnsweredVia.API,
                channel=attrs.get("channel", ""),
                touchpoint=touchpoint,
            )
        except InvalidAnswers as exc:
            return Response({"answers": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        result = submitted.response
        return Response(
            {
                "response_id": result.pk,
                "survey_id": survey.pk,
                "member_id": member.pk,
                "member_number": member.member_number,
                "submitted_at": result.submitted_at.isoformat(),
                "points_awarded": submitted.points,
                "balance": submitted.balance,
                "follow_up": submitted.follow_up is not None,
            },
            status=status.HTTP_201_CREATED,
        )


urlpatterns: list = []


def register(router) -> None:
    """Add this app's viewsets to the project's API router."""
    router.register("surveys", SurveyViewSet, basename="survey")
