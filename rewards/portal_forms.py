"""Forms for the member portal's rewards pages (the admin's forms live in rewards/forms.py)."""

import uuid

from django import forms


class RedeemForm(forms.Form):
    """The confirm step of a redemption.

    The key is made when the confirm page is rendered, so submitting that page twice (a double
    click, a refresh after a slow answer) sends the same key and redeems once.
    """

    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    @classmethod
    def fresh(cls) -> "RedeemForm":
        return cls(initial={"idempotency_key": uuid.uuid4()})


class JoinPlanForm(forms.Form):
    accept = forms.BooleanField(
        label="I want to join this plan and understand what it costs",
        error_messages={"required": "Tick the box to confirm you want to join."},
    )
