from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from members.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key acting with a user's permissions; the key is printed once."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="username the key acts as")
        parser.add_argument("--name", default="", help="a label, e.g. the shop or CRM")

    def handle(self, *args, user, name, **options):
        try:
            owner = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No user named {user!r}.") from exc
        key, raw = create_api_key(user=owner, name=name or f"{user} key")
        self.stderr.write(
            f"Created key {key.prefix}… for {user}. Store it now: it is not shown again."
        )
        self.stdout.write(raw)
