from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import api_urls

admin.site.site_header = "Loyalty program administration"
admin.site.site_title = "Loyalty admin"

urlpatterns = [
    # First: the event API is the busiest path, and Django tries the patterns in order.
    path("api/v1/", include(api_urls)),
    path("", RedirectView.as_view(pattern_name="portal:home", permanent=False)),
    path("admin/", admin.site.urls),
    path("portal/", include("members.urls", namespace="portal")),
    path("portal/", include("rewards.urls", namespace="rewards")),
    path("", include("journeys.urls", namespace="journeys")),
    path("", include("feedback.urls", namespace="feedback")),
    path("analytics/", include("analytics.urls", namespace="analytics")),
    path("", include("campaigns.urls", namespace="campaigns")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
