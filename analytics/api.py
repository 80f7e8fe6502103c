"""REST API of the analytics app (filled by its issue)."""

urlpatterns: list = []


def register(router) -> None:
    """Add this app's viewsets to the project's API router."""
