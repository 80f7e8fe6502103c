import os
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from members.roles import ANALYST, MARKETER, SUPPORT
from members.services import create_api_key

# Playwright's sync API runs an event loop; Django would otherwise refuse ORM calls in tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def restore_roles() -> None:
    """Re-run every app's `create_roles` data migration (a transactional test flushes them)."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations import RunPython

    loader = MigrationLoader(None, ignore_no_migrations=True)
    for key in sorted(loader.disk_migrations):
        for operation in loader.disk_migrations[key].operations:
            if isinstance(operation, RunPython) and operation.code.__name__ == "create_roles":
                operation.code(apps, None)


@pytest.fixture(autouse=True)
def _roles_in_transactional_tests(request):
    """Transactional tests (threads, live server, real worker) start from a flushed database.

    Django's serialized_rollback would restore it, but the copy lives on the connection object
    of one context, which Playwright's event loop does not share; so the roles are rebuilt.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("_django_db_helper")
        restore_roles()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_staff(username: str, role: str | None = None, **extra):
    user = get_user_model().objects.create_user(
        username=username,
        password=PASSWORD,
        is_staff=True,
        email=f"{username}@example.com",
        **extra,
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def marketer(db):
    return make_staff("marketer", MARKETER)


@pytest.fixture
def analyst(db):
    return make_staff("analyst", ANALYST)


@pytest.fixture
def support(db):
    return make_staff("support", SUPPORT)


@pytest.fixture
def integration_user(db):
    """A non-staff service account for a shop: it gets its rights from the Support role."""
    user = get_user_model().objects.create_user(username="shop-integration")
    user.groups.add(Group.objects.get(name=SUPPORT))
    user.user_permissions.add(*_perms("members.add_member"))
    return user


def _perms(*dotted):
    from django.contrib.auth.models import Permission

    out = []
    for d in dotted:
        app_label, codename = d.split(".")
        out.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return out


@pytest.fixture
def api_key(integration_user):
    _, raw = create_api_key(user=integration_user, name="test shop")
    return raw


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


def pytest_collection_modifyitems(items):
    """Browser tests last: Playwright's event loop stays open for the rest of the session and
    Django connections made under it are not the ones later tests see."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
