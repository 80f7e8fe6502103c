import random

from django.core.management.base import BaseCommand

from members import registry
from members.demo import DEMO_MEMBER_EMAIL, DEMO_PASSWORD, seed_members, seed_staff


class Command(BaseCommand):
    help = "Fill the database with demo data (idempotent: running it twice adds nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, members, seed, **options):
        rng = random.Random(seed)
        seed_staff(self.stdout)
        added = seed_members(rng=rng, stdout=self.stdout, count=members)
        self.stdout.write(f"members: {added} added")
        for name, seeder in registry.demo_seeders:
            seeder(rng=rng, stdout=self.stdout)
            self.stdout.write(f"{name}: done")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(
            "\n  Portal     http://127.0.0.1:8000/portal/   "
            f"{DEMO_MEMBER_EMAIL} / {DEMO_PASSWORD}\n"
            "  Admin      http://127.0.0.1:8000/admin/    "
            f"admin, marketer, analyst, support / {DEMO_PASSWORD}\n"
            "  API docs   http://127.0.0.1:8000/api/docs/\n"
        )
