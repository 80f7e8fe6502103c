import pytest

from journeys.models import JourneyStage
from journeys.services import seed_default_stages


@pytest.fixture(autouse=True)
def _default_stages(request):
    """The data migration seeds the stages; a transactional test's flush removes them."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("_django_db_helper")
        seed_default_stages()


@pytest.fixture
def stages(db):
    """The journey's stages by slug."""
    return {stage.slug: stage for stage in JourneyStage.objects.all()}
