"""Domain errors with a stable code: the API answers 409 with it, the portal shows the message."""


class DomainError(Exception):
    code = "conflict"
    status_code = 409

    def __init__(self, message: str = "", **details):
        super().__init__(message or self.__doc__ or self.code)
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details


class MemberNotActive(DomainError):
    """The member is not active."""

    code = "member_not_active"


class MemberClosed(DomainError):
    """The member's account is closed."""

    code = "member_closed"


class IdentityConflict(DomainError):
    """The email and external id belong to two different members."""

    code = "identity_conflict"
