"""Configuration read by every event (earning rules, tiers, plans; the journey's stages,
rules, event types, touchpoints), cached per process while it has not changed.

The version is the program settings row's `updated_at`, which the event paths read anyway:
saving or deleting a watched model touches it in the same transaction (a rollback undoes
both), and a cached value is used only while the settings row still carries the version it
was loaded under. Changes made without save() or delete() (QuerySet.update, bulk_create, raw
SQL) are seen after the next watched save or restart; call touch() after such a change.

The cache is used only inside `allowed()` blocks entered outside any transaction (the event
API and tasks). Code running inside a transaction it does not own (tests, a caller's atomic
block) always reads fresh, so rolled-back changes are never served from the cache.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from ..models import EarningRule, MembershipPlan, ProgramSettings, Tier
from . import sql as statements

_cache: dict[str, tuple[Any, Any]] = {}
_enabled: ContextVar[bool] = ContextVar("config_cache_enabled", default=False)
# The version current_settings() found in this allowed() block: get_current() caches under it.
_version: ContextVar[Any] = ContextVar("config_cache_version", default=None)


@contextmanager
def allowed() -> Iterator[None]:
    token = _enabled.set(_enabled.get() or not connection.in_atomic_block)
    version_token = _version.set(None)
    try:
        yield
    finally:
        _version.reset(version_token)
        _enabled.reset(token)


def get(name: str, version, load: Callable[[], Any]) -> Any:
    """`load()`'s value, from the cache when loaded under the same `version`."""
    if not _enabled.get() or version is None:
        return load()
    hit = _cache.get(name)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = load()
    _cache[name] = (version, value)
    return value


def current_settings(version=None) -> ProgramSettings:
    """The program settings row, kept in the cache while its version is unchanged: a hit costs
    one narrow query (the version) instead of reading and building the whole row, or none when
    the caller read the version already (VERSION_SQL, e.g. as a column of a statement it ran
    anyway) and passes it."""
    from ..selectors import program_settings

    if not _enabled.get():
        return program_settings()
    if version is None:
        with connection.cursor() as cursor:
            statements.execute(cursor, VERSION_SQL, [])
            row = cursor.fetchone()
        version = row[0] if row else None
    _version.set(version)
    return get("program_settings", version, program_settings)


def get_current(name: str, load: Callable[[], Any]) -> Any:
    """`load()`'s value, cached under the version current_settings() found in this block (for
    code that is not handed the version, such as a higher app's registry hook); fresh when
    there is none."""
    return get(name, _version.get(), load)


# The configuration's version: a subquery other statements may carry as a column.
VERSION_SQL = (
    f"SELECT updated_at FROM {ProgramSettings._meta.db_table} "  # noqa: S608
    f"WHERE id = {ProgramSettings.SINGLETON_ID}"
)


def touch(**kwargs) -> None:
    """A new version: every process reloads what it cached."""
    ProgramSettings.objects.filter(pk=ProgramSettings.SINGLETON_ID).update(
        updated_at=timezone.now()
    )


def watch(*models) -> None:
    for model in models:
        uid = f"config_cache:{model._meta.label}"
        post_save.connect(touch, sender=model, weak=False, dispatch_uid=f"{uid}:save")
        post_delete.connect(touch, sender=model, weak=False, dispatch_uid=f"{uid}:delete")


watch(EarningRule, Tier, MembershipPlan)
