"""Extension points for higher apps, without the members app importing them.

Higher apps (rewards, journeys, ...) register here in their AppConfig.ready(): a section of
the member's data export, and inlines or panels on the member's admin page.
"""

from collections.abc import Callable

# name -> function(member) returning JSON-serialisable data
export_sections: dict[str, Callable] = {}
# admin inline classes shown on the member's admin page, in registration order
member_admin_inlines: list[type] = []


def register_export_section(name: str, builder: Callable) -> None:
    export_sections[name] = builder


def register_member_admin_inline(inline: type) -> None:
    if inline not in member_admin_inlines:
        member_admin_inlines.append(inline)


# demo-data steps run by `manage.py seed_demo` after the members step, in registration order;
# each is function(*, rng: random.Random, stdout) and must be idempotent.
demo_seeders: list[tuple[str, Callable]] = []


def register_demo_seeder(name: str, seeder: Callable) -> None:
    if name not in dict(demo_seeders):
        demo_seeders.append((name, seeder))
