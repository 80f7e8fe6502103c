"""REST API of the feedback app (filled by its issue)."""

urlpatterns: list = []


def register(router) -> None:
    """Add this app's viewsets to the project's API router."""
