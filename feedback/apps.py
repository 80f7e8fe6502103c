from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"

    def ready(self):
        from journeys import registry as journey_registry
        from members import registry

        from .admin import MEMBER_ADMIN_INLINES
        from .demo import seed_feedback
        from .selectors import export_feedback, touchpoint_satisfaction

        registry.register_export_section("surveys", export_feedback)
        registry.register_demo_seeder("feedback", seed_feedback)
        for inline in MEMBER_ADMIN_INLINES:
            registry.register_member_admin_inline(inline)
        journey_registry.register_touchpoint_annotator(touchpoint_satisfaction)
