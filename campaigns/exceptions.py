"""Campaign domain errors; each has a stable code (the API answers 409 with it)."""

from members.exceptions import DomainError


class CampaignNotDraft(DomainError):
    """Only a draft campaign can be launched."""

    code = "campaign_not_draft"


class CampaignEnded(DomainError):
    """The campaign's end has passed."""

    code = "campaign_ended"


class CampaignIncomplete(DomainError):
    """The campaign is missing something it needs to run."""

    code = "campaign_incomplete"


class InvalidUnsubscribeLink(DomainError):
    """This unsubscribe link is not valid."""

    code = "invalid_unsubscribe_link"
    status_code = 400
