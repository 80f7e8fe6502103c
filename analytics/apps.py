from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analytics"

    def ready(self):
        from members import registry

        from .demo import seed_analytics

        registry.register_demo_seeder("analytics", seed_analytics)
