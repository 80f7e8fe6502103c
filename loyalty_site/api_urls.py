"""Every REST endpoint under /api/v1/, gathered from the apps' api modules."""

from rest_framework.routers import DefaultRouter

from members.api import MemberViewSet

router = DefaultRouter()
router.register("members", MemberViewSet, basename="member")

urlpatterns = router.urls
