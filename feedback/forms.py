"""The survey as a form for the portal and the invitation link, and the results filters.

The form only collects; feedback.services.validate_answers decides (the same rules as the API)
and its errors are put back on the fields."""

from datetime import date

from django import forms
from django.forms.utils import ErrorDict

from .models import Question, QuestionKind, Survey
from .services import MAX_TEXT_LENGTH


def field_name(question: Question) -> str:
    return f"q{question.pk}"


class AnswerForm(forms.Form):
    def __init__(self, *args, questions: list[Question], **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = questions
        for question in questions:
            self.fields[field_name(question)] = self._field(question)

    @staticmethod
    def _field(question: Question) -> forms.Field:
        common = {"label": question.text, "required": question.required}
        if question.scale:
            low, high = question.scale
            return forms.ChoiceField(
                choices=[(str(v), str(v)) for v in range(low, high + 1)],
                widget=forms.RadioSelect,
                **common,
            )
        if question.kind == QuestionKind.SINGLE_CHOICE:
            return forms.ChoiceField(
                choices=[(o, o) for o in question.option_list], widget=forms.RadioSelect, **common
            )
        if question.kind == QuestionKind.MULTIPLE_CHOICE:
            return forms.MultipleChoiceField(
                choices=[(o, o) for o in question.option_list],
                widget=forms.CheckboxSelectMultiple,
                **common,
            )
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 4}),
            max_length=MAX_TEXT_LENGTH,
            strip=True,
            **common,
        )

    def raw_answers(self) -> dict[str, object]:
        """The submitted values keyed by question id, for validate_answers."""
        answers: dict[str, object] = {}
        for question in self.questions:
            name = field_name(question)
            if question.kind == QuestionKind.MULTIPLE_CHOICE:
                answers[str(question.pk)] = self.data.getlist(name)
            else:
                answers[str(question.pk)] = self.data.get(name, "")
        return answers

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Show the service's messages, the ones that count, in place of the form's own."""
        self.is_valid()
        self._errors = ErrorDict()
        by_id = {str(q.pk): field_name(q) for q in self.questions}
        for key, messages in errors.items():
            for message in messages:
                self.add_error(by_id.get(key), message)

    def rows(self):
        """(question, bound field) pairs, in order, for the template."""
        return [(q, self[field_name(q)]) for q in self.questions]


class ResultsFilterForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="Until (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    survey = forms.ModelChoiceField(
        label="Survey", required=False, queryset=Survey.objects.order_by("name"), empty_label="All"
    )

    def clean(self):
        data = super().clean()
        start: date | None = data.get("start")
        end: date | None = data.get("end")
        if start and end and end < start:
            self.add_error("end", "The end must not be before the start.")
        return data
