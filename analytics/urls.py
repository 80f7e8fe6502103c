"""The analysts' dashboards under /analytics/ (the segment live count lives in the admin)."""

from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("retention/", views.retention, name="retention"),
    path("lifetime-value/", views.lifetime_value, name="lifetime_value"),
    path("churn-risk/", views.churn, name="churn"),
    path("journey/", views.journey, name="journey"),
    path("feedback/", views.feedback, name="feedback"),
    path("paid-plan/", views.paid_plan, name="paid_plan"),
]
