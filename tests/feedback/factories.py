import factory

from feedback.models import Question, QuestionKind, Survey, SurveyKind
from tests.journeys.factories import TouchpointFactory
from tests.members.factories import MemberFactory

__all__ = ["MemberFactory", "QuestionFactory", "SurveyFactory", "TouchpointFactory"]


class SurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Survey

    name = factory.Sequence(lambda n: f"Survey {n}")
    slug = factory.Sequence(lambda n: f"survey-{n}")
    kind = SurveyKind.NPS
    title = "How likely are you to recommend us?"
    trigger_event_type = "purchase"
    cooldown_days = 0
    points = 0


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    survey = factory.SubFactory(SurveyFactory)
    order = factory.Sequence(lambda n: n)
    text = factory.Sequence(lambda n: f"Question {n}?")
    kind = QuestionKind.NPS
    required = True
