"""API authentication by key (`Authorization: Api-Key <key>`) and permission checks.

A key acts with its user's permissions: the same Django model permissions that the staff
groups (Marketer, Analyst, Support) grant in the admin.
"""

import hmac
import time

from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey

KEYWORD = "Api-Key"


CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, object, object]] = {}


def authenticate_key(header: str):
    """(user, key) for an `Authorization` header value `Api-Key <key>`, None for a header of
    another scheme (or none); raises AuthenticationFailed for a bad key, an inactive user or a
    malformed header. The one check of API keys, for DRF (ApiKeyAuthentication) and for the
    event API's fast path (journeys.fastpath).

    Each process remembers a verified key (by its SHA-256 digest) with its user, and that
    user's loaded permissions, for CACHE_SECONDS: the event API then spends no query on
    authentication. Revoking a key, deactivating its user or changing their permissions takes
    effect within those seconds. Requests inside a transaction (tests) always look the key up."""
    if not header:
        return None
    parts = header.split()
    if parts[0] != KEYWORD:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("Invalid Api-Key header.")
    raw = parts[1]
    digest = ApiKey.digest(raw)
    cacheable = not connection.in_atomic_block
    if cacheable:
        hit = _cache.get(digest)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1], hit[2]
    prefix = raw.split(".", 1)[0]
    key = (
        ApiKey.objects.select_related("user")
        .filter(prefix=prefix, revoked=False)
        .only("hashed_key", "last_used_at", "user")
        .first()
    )
    if key is None or not hmac.compare_digest(key.hashed_key, digest):
        raise exceptions.AuthenticationFailed("Invalid API key.")
    if not key.user.is_active:
        raise exceptions.AuthenticationFailed("The key's user is inactive.")
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 300:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    if cacheable:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[digest] = (time.monotonic(), key.user, key)
    return key.user, key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication by API key: see authenticate_key."""

    def authenticate(self, request):
        return authenticate_key(authentication.get_authorization_header(request).decode("latin-1"))

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
