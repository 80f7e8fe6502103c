"""Every REST endpoint under /api/v1/, gathered from the apps' api modules."""

from rest_framework.routers import DefaultRouter

from analytics import api as analytics_api
from campaigns import api as campaigns_api
from feedback import api as feedback_api
from journeys.api import EventViewSet
from members.api import MemberViewSet
from rewards import api as rewards_api

router = DefaultRouter()
router.register("members", MemberViewSet, basename="member")
router.register("events", EventViewSet, basename="event")
rewards_api.register(router)
feedback_api.register(router)
analytics_api.register(router)
campaigns_api.register(router)

urlpatterns = (
    router.urls
    + rewards_api.urlpatterns
    + feedback_api.urlpatterns
    + analytics_api.urlpatterns
    + campaigns_api.urlpatterns
)
