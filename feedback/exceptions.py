"""Feedback errors: bad answers are bad input (HTTP 400 with field errors); answering twice,
a stale link or a closed survey are conflicts (409 with a stable code)."""

from members.exceptions import DomainError


class InvalidAnswers(Exception):
    """Answers that do not fit their questions; `errors` maps a question id ("12") or a field
    name to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items()))
        self.errors = errors


class AlreadyAnswered(DomainError):
    """This survey has already been answered."""

    code = "already_answered"


class InvitationExpired(DomainError):
    """This invitation has expired."""

    code = "invitation_expired"


class NotInvited(DomainError):
    """This member has no open invitation to this survey, and it is not open to everyone."""

    code = "not_invited"


class SurveyClosed(DomainError):
    """This survey is not taking answers."""

    code = "survey_closed"
