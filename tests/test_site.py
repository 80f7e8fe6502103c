import pytest
from django.urls import reverse

from rewards.selectors import program_settings


@pytest.mark.django_db
def test_every_page_shows_the_programs_name(client):
    settings_row = program_settings()
    settings_row.name = "Koffie Club"
    settings_row.save()
    page = client.get(reverse("portal:login")).content.decode()
    assert "<title>Log in · Koffie Club</title>" in page
    assert ">Koffie Club</a>" in page
