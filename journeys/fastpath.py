"""The event API's fast path: `POST /api/v1/events/` answered in front of Django's request
handling, for the requests that need nothing else.

Django's handler, its middleware and DRF's view machinery cost more processor time than
ingesting a page view does. `EventFastPath` wraps the WSGI application
(loyalty_site/wsgi.py) and answers a single event itself when it is the plain case: a POST to
the events URL, an `Api-Key` whose user may add events, a host Django accepts, HTTPS when
Django would redirect to it, a JSON object that passes the lean check of journeys.api (every
field of the plain valid kind) and a member that exists. It calls the same code as the DRF
view (members.api_auth.authenticate_key, journeys.api.lean_event_attrs,
journeys.selectors.find_member_and_version, journeys.services.ingest_event, DRF's
JSONRenderer) and sends the headers Django's middleware and DRF would add.

Every other request, and every one of these that does not end in a 200 or 201 (a bad key,
missing permission, invalid JSON, an invalid event, an unknown member, any error), goes to
Django unchanged (the body it read is handed on): the error answers are DRF's own. Nothing is
written before an event is found valid, and an event is written in one transaction, so
handing a request on never doubles a write; an event whose transaction failed is sent to
Django again, which then fails or answers the same way. tests/journeys/test_fastpath.py
checks that both paths give the same answers.

EVENT_FAST_PATH=0 turns it off.
"""

import io
import logging
import threading

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.middleware.security import SecurityMiddleware
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import json

from members.api_auth import authenticate_key

from . import selectors, services
from .api import ADD_EVENT, event_data, lean_event_attrs
from .exceptions import InvalidEvent

logger = logging.getLogger(__name__)

_STATUS = {201: "201 Created", 200: "200 OK"}
_renderer = JSONRenderer()


class _Request(HttpRequest):
    """Just enough of a request for Django's own get_host() and is_secure()."""

    def __init__(self, environ):
        self.META = environ

    def _get_scheme(self):
        return self.META.get("wsgi.url_scheme")


class _Pass(Exception):
    """Django answers this request."""


class EventFastPath:
    def __init__(self, application):
        self.application = application
        self._ready = False
        self._lock = threading.Lock()

    def _setup(self) -> None:
        with self._lock:
            if self._ready:
                return
            self.enabled = getattr(settings, "EVENT_FAST_PATH", True)
            self.path = reverse("event-list")
            security = SecurityMiddleware(lambda request: None)
            self.redirect = security.redirect
            self.common_headers = [("Allow", "POST, OPTIONS")]
            if settings.X_FRAME_OPTIONS:
                self.common_headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS.upper()))
            self.security_headers = []
            if security.content_type_nosniff:
                self.security_headers.append(("X-Content-Type-Options", "nosniff"))
            if security.referrer_policy:
                policy = security.referrer_policy
                if not isinstance(policy, str):
                    policy = ",".join(policy)
                self.security_headers.append(("Referrer-Policy", policy))
            if security.cross_origin_opener_policy:
                self.security_headers.append(
                    ("Cross-Origin-Opener-Policy", security.cross_origin_opener_policy)
                )
            self.hsts = None
            if security.sts_seconds:
                value = f"max-age={security.sts_seconds}"
                if security.sts_include_subdomains:
                    value += "; includeSubDomains"
                if security.sts_preload:
                    value += "; preload"
                self.hsts = value
            self._ready = True

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST" or "HTTP_AUTHORIZATION" not in environ:
            return self.application(environ, start_response)
        if not self._ready:
            self._setup()
        if not self.enabled or environ.get("PATH_INFO") != self.path or environ.get("SCRIPT_NAME"):
            return self.application(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return self.application(environ, start_response)
        if not 0 < length <= (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or length):
            return self.application(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # for Django, should it answer
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            answer = self._answer(environ, body)
        except _Pass:
            answer = None
        except Exception:
            logger.debug("fast path handed the event on to Django", exc_info=True)
            answer = None
        finally:
            signals.request_finished.send(sender=self.__class__)
        if answer is None:
            environ["wsgi.input"].seek(0)
            return self.application(environ, start_response)
        status, content, secure = answer
        headers = [
            ("Content-Type", "application/json"),
            *self.common_headers,
            ("Content-Length", str(len(content))),
            *self.security_headers,
        ]
        if secure and self.hsts:
            headers.append(("Strict-Transport-Security", self.hsts))
        start_response(_STATUS[status], headers)
        return [content]

    def _answer(self, environ, body: bytes) -> tuple[int, bytes, bool]:
        content_type = environ.get("CONTENT_TYPE", "").lower().replace(" ", "")
        if content_type not in ("application/json", "application/json;charset=utf-8"):
            raise _Pass
        request = _Request(environ)
        try:
            request.get_host()
        except DisallowedHost:
            raise _Pass from None
        secure = request.is_secure()
        if self.redirect and not secure:
            raise _Pass  # SecurityMiddleware redirects to HTTPS
        try:
            found = authenticate_key(environ["HTTP_AUTHORIZATION"])
        except AuthenticationFailed:
            raise _Pass from None
        if found is None or not found[0].has_perms((ADD_EVENT,)):
            raise _Pass
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=json.strict_constant)
        except ValueError:
            raise _Pass from None
        attrs = lean_event_attrs(data)
        if attrs is None:
            raise _Pass
        member, version = selectors.find_member_and_version(
            member_id=attrs.get("member_id"),
            member_number=attrs.get("member_number") or "",
            external_id=attrs.get("external_id") or "",
        )
        if member is None:
            raise _Pass
        event = event_data(attrs, member, timezone.now())
        try:
            result = services.ingest_event(**vars(event), settings_version=version)
        except InvalidEvent:
            raise _Pass from None
        return (201 if result.created else 200), _renderer.render(result.response), secure
