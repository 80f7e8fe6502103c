from django.apps import AppConfig


class JourneysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "journeys"

    def ready(self):
        from members import registry

        from .admin_inlines import MEMBER_ADMIN_INLINES
        from .demo import seed_journeys
        from .selectors import export_journey

        registry.register_export_section("journey", export_journey)
        registry.register_demo_seeder("journeys", seed_journeys)
        for inline in MEMBER_ADMIN_INLINES:
            registry.register_member_admin_inline(inline)
