"""Portal survey pages (/portal/surveys/), the invitation link (/s/<token>/) and the results
for analysts (/feedback/results/). Included at the site root."""

from django.urls import path

from . import views

app_name = "feedback"
urlpatterns = [
    path("portal/surveys/", views.survey_list, name="surveys"),
    path("portal/surveys/<int:survey_id>/", views.answer_survey, name="answer"),
    path("s/<str:token>/", views.answer_link, name="answer_link"),
    path("feedback/results/", views.results, name="results"),
]
