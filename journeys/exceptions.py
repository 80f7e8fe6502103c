"""Journey errors. A rejected event is bad input (HTTP 400 with field errors), not a conflict."""


class InvalidEvent(Exception):
    """The event cannot be accepted; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))
        self.errors = errors
