"""Every REST endpoint under /api/v1/, gathered from the apps' api modules."""

from rest_framework.routers import DefaultRouter

from journeys.api import EventViewSet
from members.api import MemberViewSet
from rewards import api as rewards_api

router = DefaultRouter()
router.register("members", MemberViewSet, basename="member")
router.register("events", EventViewSet, basename="event")
rewards_api.register(router)

urlpatterns = router.urls + rewards_api.urlpatterns
