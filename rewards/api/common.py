"""Pieces shared by the rewards API views: member lookup from the URL and error schemas."""

from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.generics import get_object_or_404

from members.exceptions import DomainError
from members.models import Member

from ..validation import window_error

# Points an API adjustment may move at once: far above any real correction, far below the
# database's integer range.
MAX_ADJUSTMENT = 10_000_000
# Client idempotency keys are stored with a prefix naming the endpoint and the member.
IDEMPOTENCY_KEY_LENGTH = 100

MEMBER_ID = OpenApiParameter(
    "member_id", int, OpenApiParameter.PATH, description="The member's id."
)


class InUse(DomainError):
    """Other records still refer to this one; deactivate it instead of deleting it."""

    code = "in_use"


class ConflictSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


def conflict(*codes: str) -> OpenApiResponse:
    return OpenApiResponse(
        ConflictSerializer, description="A business conflict; `code` is one of: " + ", ".join(codes)
    )


NOT_FOUND = OpenApiResponse(description="No such member (or object).")


def idempotency_key_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=IDEMPOTENCY_KEY_LENGTH,
        help_text="Your unique key for this request; sending it again returns the first result.",
    )


class MemberScopedMixin:
    """For views under /members/{member_id}/: the member named in the URL (404 if unknown).

    Permission checks run before the handler, so a caller without rights gets 403 either way.
    """

    def get_member(self) -> Member:
        if not hasattr(self, "_member"):
            self._member = get_object_or_404(Member.objects.all(), pk=self.kwargs["member_id"])
        return self._member

    def is_schema_view(self) -> bool:
        return getattr(self, "swagger_fake_view", False)


def window_errors(attrs: dict, instance=None) -> dict:
    """A field error when the active window ends before it starts (values merged with the
    instance, so a partial update is checked against what is stored)."""
    active_from = merged(attrs, instance, "active_from")
    active_until = merged(attrs, instance, "active_until")
    problem = window_error(active_from, active_until)
    return {"active_until": [problem]} if problem else {}


def merged(attrs: dict, instance, name: str, default=None):
    if name in attrs:
        return attrs[name]
    if instance is not None:
        return getattr(instance, name)
    return default


class ProtectedDestroyMixin:
    """DELETE answers 409 `in_use` instead of failing when other rows protect the object."""

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError as exc:
            raise InUse() from exc
