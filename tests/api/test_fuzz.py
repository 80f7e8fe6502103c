"""Schemathesis fuzzes every operation in /api/schema/: no input may cause a server error.

New endpoints are picked up automatically from the schema.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from loyalty_site.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def wsgi_in_test_transaction():
    """Like Django's test client: keep the request cycle from closing the test's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db, wsgi_in_test_transaction):
    from django.contrib.auth import get_user_model

    from members.services import create_api_key

    user = get_user_model().objects.create_superuser("fuzzer", "fuzz@example.com", None)
    _, raw = create_api_key(user=user, name="fuzz")
    return {"Authorization": f"Api-Key {raw}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_causes_a_server_error(case, auth_headers):
    response = case.call(headers=auth_headers)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n{response.text[:2000]}"
    )
