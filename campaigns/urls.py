"""Pages of the campaigns app (filled by its issue)."""

app_name = "campaigns"
urlpatterns: list = []
