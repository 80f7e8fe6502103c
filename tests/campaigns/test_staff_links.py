"""The admin header links each role to the staff pages it may open, and only those."""

import pytest
from django.urls import reverse

DASHBOARDS = reverse("analytics:overview")
MAP = reverse("journeys:map")
CAMPAIGNS = reverse("campaigns:results_list")


def header_links(client, user) -> set[str]:
    client.force_login(user)
    html = client.get(reverse("admin:index")).content.decode()
    return {url for url in (DASHBOARDS, MAP, CAMPAIGNS) if f'href="{url}"' in html}


@pytest.mark.django_db
def test_analyst_is_linked_to_the_dashboards_and_results(client, analyst):
    assert header_links(client, analyst) == {DASHBOARDS, MAP, CAMPAIGNS}


@pytest.mark.django_db
def test_marketer_is_linked_to_the_map_and_results_but_not_the_dashboards(client, marketer):
    assert header_links(client, marketer) == {MAP, CAMPAIGNS}
    assert client.get(DASHBOARDS).status_code == 403


@pytest.mark.django_db
def test_support_gets_no_analysis_links(client, support):
    assert header_links(client, support) == set()
