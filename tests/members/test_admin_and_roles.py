import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from members.models import MemberStatus

from .factories import MemberFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_roles_exist_with_their_permissions():
    perms = {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    }
    assert {"view_member"} <= perms["Analyst"]
    assert {"view_member", "change_member"} <= perms["Support"]
    assert "change_member" not in perms["Analyst"]
    assert "change_periodictask" in perms["Marketer"]


@pytest.mark.django_db
def test_support_finds_member_by_email_and_number(client, support):
    target = MemberFactory(email="findme@example.com", first_name="Findable")
    MemberFactory(email="someone@example.com")
    client.force_login(support)
    by_email = client.get("/admin/members/member/", {"q": "FINDME@example.com"}).content.decode()
    assert target.member_number in by_email and "someone@example.com" not in by_email
    by_number = client.get("/admin/members/member/", {"q": target.member_number})
    assert "findme@example.com" in by_number.content.decode()


@pytest.mark.django_db
def test_suspend_action_uses_service(client, support):
    member = MemberFactory()
    client.force_login(support)
    client.post(
        "/admin/members/member/",
        {"action": "suspend_selected", "_selected_action": [member.pk]},
    )
    member.refresh_from_db()
    assert member.status == MemberStatus.SUSPENDED


@pytest.mark.django_db
def test_analyst_cannot_change_members(client, analyst):
    member = MemberFactory()
    client.force_login(analyst)
    response = client.post(
        f"/admin/members/member/{member.pk}/change/",
        {"first_name": "Hacked"},
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_member_is_refused_the_admin(client):
    member = MemberFactory(password="pw-long-enough-123")
    client.force_login(member.user)
    response = client.get("/admin/members/member/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_admin_creates_api_key_and_shows_it_once(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "r@example.com", "pw-xyz-123456")
    client.force_login(admin)
    response = client.post(
        "/admin/members/apikey/add/", {"name": "POS", "user": admin.pk}, follow=True
    )
    text = response.content.decode()
    key = admin.api_keys.get()
    assert key.prefix in text and "will not be shown again" in text
    raw = text.split("The new key is ", 1)[1].split(" ", 1)[0]
    assert key.digest(raw) == key.hashed_key


@pytest.mark.django_db
def test_create_api_key_command_prints_key_once(django_user_model):
    from io import StringIO

    from django.core.management import call_command

    user = django_user_model.objects.create_user("crm")
    out = StringIO()
    call_command("create_api_key", "--user", "crm", stdout=out, stderr=StringIO())
    raw = out.getvalue().strip()
    key = user.api_keys.get()
    assert key.digest(raw) == key.hashed_key and raw not in key.hashed_key


def test_check_deploy_is_clean_with_production_settings():
    # Only what a production host sets: none of the test run's relaxations.
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(
        SECRET_KEY="x" * 30 + "-a-long-random-production-secret-value-123",
        ALLOWED_HOSTS="loyalty.example.com",
        DATABASE_URL="sqlite:////tmp/deploy-check.db",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("command", "debug"),
    [
        (["-c", "import loyalty_site.wsgi"], None),  # what gunicorn loads
        (["manage.py", "check"], "0"),  # the CLI with DEBUG explicitly off
    ],
)
def test_secret_key_is_required_without_debug(command, debug):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    if debug is not None:
        env["DEBUG"] = debug
    result = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_seed_demo_is_idempotent(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    for _ in range(2):
        subprocess.run(
            [*run, "seed_demo", "--members", "150"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    count = subprocess.run(
        [
            *run,
            "shell",
            "-c",
            "from members.models import Member; print(Member.objects.count(), "
            "Member.objects.values('email').distinct().count())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert count.stdout.split()[-2:] == ["150", "150"]
