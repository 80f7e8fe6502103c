from django.apps import AppConfig


class MembersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "members"

    def ready(self):
        from . import api_auth  # noqa: F401  (registers the OpenAPI auth scheme)
