"""REST API for members: thin views that validate, call a service and serialize."""

from django.db.models.functions import Lower
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from . import services
from .models import Channel, Member, MemberStatus, PreferredChannel


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = [
            "id",
            "member_number",
            "email",
            "first_name",
            "last_name",
            "phone",
            "birth_date",
            "country",
            "city",
            "preferred_channel",
            "locale",
            "marketing_consent",
            "consent_changed_at",
            "enrollment_channel",
            "enrolled_at",
            "status",
            "external_id",
            "referral_code",
            "referred_by",
        ]
        read_only_fields = fields


class EnrollSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_null=True, allow_blank=True)
    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=64
    )
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)
    birth_date = serializers.DateField(required=False, allow_null=True)
    country = serializers.RegexField(r"^[A-Z]{2}$", required=False, allow_blank=True)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    preferred_channel = serializers.ChoiceField(PreferredChannel.choices, required=False)
    locale = serializers.CharField(required=False, max_length=10)
    marketing_consent = serializers.BooleanField(required=False, default=False)
    enrollment_channel = serializers.ChoiceField(Channel.choices, required=False, default="api")
    referral_code = serializers.CharField(required=False, allow_blank=True, max_length=12)

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("external_id"):
            raise serializers.ValidationError(
                {"email": ["Give an email or an external_id."], "external_id": ["Give one."]}
            )
        return attrs


class ProfileUpdateSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)
    birth_date = serializers.DateField(required=False, allow_null=True)
    country = serializers.RegexField(r"^[A-Z]{2}$", required=False, allow_blank=True)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    preferred_channel = serializers.ChoiceField(PreferredChannel.choices, required=False)
    locale = serializers.CharField(required=False, max_length=10)
    marketing_consent = serializers.BooleanField(required=False)
    status = serializers.ChoiceField([MemberStatus.ACTIVE, MemberStatus.SUSPENDED], required=False)


class MemberFilter(filters.FilterSet):
    email = filters.CharFilter(method="filter_email")
    external_id = filters.CharFilter()
    member_number = filters.CharFilter()
    status = filters.ChoiceFilter(choices=MemberStatus.choices)

    class Meta:
        model = Member
        fields = ["email", "external_id", "member_number", "status"]

    def filter_email(self, queryset, name, value):
        return queryset.annotate(email_lower=Lower("email")).filter(
            email_lower=services.normalize_email(value)
        )


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Members: enroll (idempotent on email and external_id), look up, read and update."""

    queryset = Member.objects.select_related("referred_by").order_by("id")
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        request=EnrollSerializer,
        responses={
            201: MemberSerializer,
            200: OpenApiResponse(MemberSerializer, description="Already enrolled"),
        },
    )
    def create(self, request):
        data = EnrollSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        channel = fields.pop("enrollment_channel", Channel.API)
        member, created = services.enroll_member(channel=channel, **fields)
        return Response(
            MemberSerializer(member).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=ProfileUpdateSerializer, responses=MemberSerializer)
    def partial_update(self, request, pk=None):
        member = self.get_object()
        data = ProfileUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        consent = changes.pop("marketing_consent", None)
        new_status = changes.pop("status", None)
        member = services.update_profile(member=member, **changes)
        if consent is not None:
            member = services.set_consent(member=member, given=consent, source="api")
        if new_status == MemberStatus.SUSPENDED and member.status != new_status:
            member = services.suspend_member(member=member)
        elif new_status == MemberStatus.ACTIVE and member.status != new_status:
            member = services.reactivate_member(member=member)
        return Response(MemberSerializer(member).data)
