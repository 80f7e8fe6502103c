"""Pages of the campaigns app, included at the site root (namespace "campaigns")."""

from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("portal/offers/", views.offers, name="offers"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("analytics/campaigns/", views.results_list, name="results_list"),
    path("analytics/campaigns/<int:pk>/", views.results, name="results"),
]
