"""API authentication by key (`Authorization: Api-Key <key>`) and permission checks.

A key acts with its user's permissions: the same Django model permissions that the staff
groups (Marketer, Analyst, Support) grant in the admin.
"""

import hmac

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Api-Key header.")
        raw = parts[1]
        prefix = raw.split(".", 1)[0]
        key = (
            ApiKey.objects.select_related("user")
            .filter(prefix=prefix, revoked=False)
            .only("hashed_key", "last_used_at", "user")
            .first()
        )
        if key is None or not hmac.compare_digest(key.hashed_key, ApiKey.digest(raw)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("The key's user is inactive.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 300:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.user, key

    def authenticate_header(self, request):
        return KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "members.api_auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Value: `Api-Key <key>`",
        }


class StrictModelPermissions(permissions.DjangoModelPermissions):
    """Model permissions that also require `view_` for reads (DRF's default lets any user read)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
    }


class HasPermission(permissions.BasePermission):
    """For action endpoints: `permission_classes = [HasPermission.of("rewards.add_x")]`."""

    required: tuple[str, ...] = ()

    @classmethod
    def of(cls, *perms: str):
        return type("HasPermission", (cls,), {"required": perms})

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(self.required))
