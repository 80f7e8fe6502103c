"""Member portal pages for points, rewards and the paid plan, under /portal/ (namespace
"rewards"); the members app owns the rest of /portal/."""

from django.urls import path

from . import views

app_name = "rewards"

urlpatterns = [
    path("points/", views.history, name="history"),
    path("rewards/", views.catalogue, name="catalogue"),
    path("rewards/<int:reward_id>/redeem/", views.redeem, name="redeem"),
    path("my-rewards/", views.my_rewards, name="my_rewards"),
    path("my-rewards/<int:pk>/", views.redemption, name="redemption"),
    path("membership/", views.membership, name="membership"),
    path("membership/join/<int:plan_id>/", views.join_plan, name="join"),
    path("membership/cancel/", views.cancel_plan, name="cancel"),
    path("membership/resume/", views.resume_plan, name="resume"),
    path("referrals/", views.referrals, name="referrals"),
]
