from django.apps import AppConfig


class RewardsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rewards"

    def ready(self):
        from members import registry

        from .admin import MEMBER_ADMIN_INLINES
        from .demo import seed_rewards
        from .selectors import export_points

        registry.register_export_section("points", export_points)
        registry.register_demo_seeder("rewards", seed_rewards)
        for inline in MEMBER_ADMIN_INLINES:
            registry.register_member_admin_inline(inline)
