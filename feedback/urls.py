"""Pages of the feedback app (filled by its issue)."""

app_name = "feedback"
urlpatterns: list = []
