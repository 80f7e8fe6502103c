"""Checking a member's answers against the survey's questions (the same rules for the API and
the portal form)."""

import re
from dataclasses import dataclass

from ..exceptions import InvalidAnswers
from ..models import Question, QuestionKind

MAX_TEXT_LENGTH = 2000
NEEDS_ANSWER = "This question needs an answer."


@dataclass(frozen=True)
class CleanAnswer:
    question: Question
    score: int | None = None
    choices: tuple[str, ...] = ()
    text: str = ""


_INTEGER = re.compile(r"^\s*-?\d{1,3}\s*$")


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


def _is_empty(value) -> bool:
    return (
        value is None
        or (isinstance(value, str | list | tuple) and not value)
        or (isinstance(value, str) and not value.strip())
    )


def _check(question: Question, value) -> tuple[CleanAnswer | None, str]:
    """The cleaned answer, or an error message."""
    if question.scale:
        low, high = question.scale
        score = _as_int(value)
        if score is None or not low <= score <= high:
            return None, f"Give a whole number from {low} to {high}."
        return CleanAnswer(question, score=score), ""
    if question.kind == QuestionKind.SINGLE_CHOICE:
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or value not in question.option_list:
            return None, f"Choose one of: {', '.join(question.option_list)}."
        return CleanAnswer(question, choices=(value,)), ""
    if question.kind == QuestionKind.MULTIPLE_CHOICE:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            return None, "Give a list of options."
        unknown = [v for v in values if v not in question.option_list]
        if unknown:
            return None, (
                f"Unknown choice: {', '.join(unknown)[:200]}. "
                f"Choose from: {', '.join(question.option_list)}."
            )
        chosen = tuple(option for option in question.option_list if option in values)
        return CleanAnswer(question, choices=chosen), ""
    if not isinstance(value, str):
        return None, "Give a text."
    if "\x00" in value:
        return None, "Text may not contain NUL characters."
    if len(value) > MAX_TEXT_LENGTH:
        return None, f"At most {MAX_TEXT_LENGTH} characters."
    return CleanAnswer(question, text=value.strip()), ""


def validate_answers(questions: list[Question], raw) -> list[CleanAnswer]:
    """Answers checked against their questions, keyed by question id (str or int).

    Raises InvalidAnswers mapping each failing question id to its messages."""
    if not isinstance(raw, dict):
        raise InvalidAnswers({"answers": ["An object mapping question ids to answers."]})
    given = {str(key): value for key, value in raw.items()}
    known = {str(question.pk) for question in questions}
    errors: dict[str, list[str]] = {
        key[:20]: ["Not a question of this survey."] for key in given if key not in known
    }
    clean = []
    for question in questions:
        key = str(question.pk)
        value = given.get(key)
        if _is_empty(value):
            if question.required:
                errors[key] = [NEEDS_ANSWER]
            continue
        answer, error = _check(question, value)
        if error:
            errors[key] = [error]
        elif answer.text or answer.score is not None or answer.choices:
            clean.append(answer)
        elif question.required:
            errors[key] = [NEEDS_ANSWER]
    if errors:
        raise InvalidAnswers(errors)
    return clean
