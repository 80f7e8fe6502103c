from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self):
        from members import registry
        from rewards import registry as rewards_registry

        from .admin import MemberCampaignsInline
        from .demo import seed_campaigns
        from .selectors import export_campaigns
        from .services import multiplier_offers, record_offer_points

        rewards_registry.register_multiplier_provider(multiplier_offers)
        rewards_registry.register_award_listener(record_offer_points)
        registry.register_demo_seeder("campaigns", seed_campaigns)
        registry.register_export_section("campaigns", export_campaigns)
        registry.register_member_admin_inline(MemberCampaignsInline)
