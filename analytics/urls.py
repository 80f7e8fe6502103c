"""Pages of the analytics app (filled by its issue)."""

app_name = "analytics"
urlpatterns: list = []
