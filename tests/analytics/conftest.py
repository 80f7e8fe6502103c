import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    """The dashboards cache member aggregates per pipeline run; each test starts without."""
    cache.clear()
    yield
    cache.clear()
