"""The member's activity page (under /portal/) and the journey map for staff (/journeys/)."""

from django.urls import path

from . import views

app_name = "journeys"

urlpatterns = [
    path("portal/activity/", views.activity, name="activity"),
    path("journeys/map/", views.journey_map, name="map"),
]
