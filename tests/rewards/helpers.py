from datetime import datetime
from zoneinfo import ZoneInfo

from rewards.models import PointsAccount
from rewards.services import check_ledger, ledger_sum

AMS = ZoneInfo("Europe/Amsterdam")


def at(*args) -> datetime:
    """A moment in the program's timezone."""
    return datetime(*args, tzinfo=AMS)


def balance(member) -> int:
    account = PointsAccount.objects.filter(member_id=member.pk).first()
    return account.balance if account else 0


def assert_consistent(member) -> None:
    """Cached balance and pending agree with the ledger and with the buckets."""
    assert check_ledger(member) == []
    account = PointsAccount.objects.get(member_id=member.pk)
    assert ledger_sum(member)["balance"] == account.balance
