"""The marketer's campaign screens: build a campaign, preview its message for a member, send
a test to yourself, count the audience and launch; read what was sent and to whom."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template import TemplateSyntaxError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from journeys.admin_inlines import ReadOnlyInline
from members.exceptions import DomainError
from rewards.admin import member_link as link_to_member

from . import services
from .forms import CampaignForm, PreviewForm
from .messages import PLACEHOLDERS, render_for_member
from .models import Campaign, CampaignSend, CampaignSettings, CampaignStatus, OfferAward

EDITABLE_AFTER_LAUNCH = ("description",)


@admin.register(CampaignSettings)
class CampaignSettingsAdmin(admin.ModelAdmin):
    """One row: the list goes straight to it."""

    fields = ("weekly_message_cap", "batch_size", "messages_per_minute")

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row = services.campaign_settings()
        return redirect(reverse("admin:campaigns_campaignsettings_change", args=[row.pk]))

    def get_object(self, request, object_id, from_field=None):
        if str(object_id) == str(CampaignSettings.SINGLETON_ID):
            return services.campaign_settings()
        return None

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = (
        "name",
        "status",
        "schedule",
        "segment",
        "offer_kind",
        "starts_at",
        "ends_at",
        "budget",
    )
    list_filter = ("status", "schedule", "offer_kind")
    search_fields = ("name",)
    list_select_related = ("segment",)
    readonly_fields = ("status", "next_steps", "points_awarded", "launched_at", "launched_by")
    actions = ("cancel_selected",)
    fieldsets = (
        (None, {"fields": ("name", "description", "status", "next_steps")}),
        (
            "Audience and schedule",
            {
                "fields": (
                    "segment",
                    "schedule",
                    "send_at",
                    "trigger_stage",
                    ("starts_at", "ends_at"),
                    "control_share",
                    "channel",
                ),
                "description": "Once: everyone in the segment at the send time. Always on: "
                "each member who enters the stage (or the segment) during the campaign, once.",
            },
        ),
        (
            "Offer",
            {
                "fields": (
                    "offer_kind",
                    "offer_title",
                    "offer_description",
                    ("multiplier", "multiplier_event_type"),
                    "bonus_points",
                    "reward",
                    ("points_budget", "points_awarded"),
                ),
            },
        ),
        ("Message", {"fields": ("subject_template", "body_template", "conversion_days")}),
        ("Launch", {"fields": ("launched_at", "launched_by"), "classes": ("collapse",)}),
    )

    @admin.display(description="Points (used / budget)")
    def budget(self, campaign):
        if campaign.points_budget is None:
            return campaign.points_awarded or "–"
        return f"{campaign.points_awarded} / {campaign.points_budget}"

    @admin.display(description="Next steps")
    def next_steps(self, campaign):
        if campaign.pk is None:
            return "Save the campaign, then preview its message and launch it."
        links = [
            (reverse("admin:campaigns_campaign_preview", args=[campaign.pk]), "Preview message"),
        ]
        if campaign.status == CampaignStatus.DRAFT:
            url = reverse("admin:campaigns_campaign_launch", args=[campaign.pk])
            links.append((url, "Audience and launch"))
        else:
            links.append((reverse("campaigns:results", args=[campaign.pk]), "Results"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        help_text = "You can use: " + ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS)
        if "body_template" in form.base_fields:
            form.base_fields["body_template"].help_text = help_text
        return form

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            editable = set(EDITABLE_AFTER_LAUNCH)
            fields = [f.name for f in Campaign._meta.fields if f.name not in editable]
            return [*fields, "next_steps"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(
        description="Cancel the selected campaigns (stop sends and offers)",
        permissions=["change"],
    )
    def cancel_selected(self, request, queryset):
        for campaign in queryset:
            services.cancel_campaign(campaign=campaign)
        self.message_user(request, f"Cancelled {queryset.count()} campaigns.", messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
            path(
                "<path:object_id>/launch/",
                self.admin_site.admin_view(self.launch_view),
                name="campaigns_campaign_launch",
            ),
            *super().get_urls(),
        ]

    def _campaign(self, request, object_id) -> Campaign:
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404("No such campaign.")
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def _context(self, request, campaign, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": campaign,
            "campaign": campaign,
            "title": title,
            **extra,
        }

    def preview_view(self, request, object_id):
        """The message rendered for a chosen member; "Send me a test" mails it to you."""
        campaign = self._campaign(request, object_id)
        form = PreviewForm(request.POST or request.GET or None)
        rendered = member = None
        if form.is_bound and form.is_valid():
            member = form.cleaned_data["member"]
            try:
                if request.method == "POST" and "_send_test" in request.POST:
                    if not request.user.email:
                        raise PermissionDenied("Your account has no email address.")
                    rendered = services.send_test(
                        campaign=campaign, member=member, to=request.user.email
                    )
                    self.message_user(
                        request, f"A test was sent to {request.user.email}.", messages.SUCCESS
                    )
                else:
                    rendered = render_for_member(campaign, member)
            except TemplateSyntaxError as exc:
                form.add_error(None, f"The message does not render: {exc}")
        context = self._context(
            request,
            campaign,
            f"Preview: {campaign}",
            form=form,
            rendered=rendered,
            member=member,
        )
        return TemplateResponse(request, "admin/campaigns/campaign/preview.html", context)

    def launch_view(self, request, object_id):
        """The audience count before launch, and the launch button."""
        campaign = self._campaign(request, object_id)
        if request.method == "POST":
            if not self.has_change_permission(request, campaign):
                raise PermissionDenied
            try:
                campaign = services.launch_campaign(campaign=campaign, actor=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Launched: the campaign is {campaign.get_status_display().lower()}.",
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        context = self._context(
            request,
            campaign,
            f"Audience and launch: {campaign}",
            audience=services.count_audience(campaign),
            can_launch=campaign.status == CampaignStatus.DRAFT
            and self.has_change_permission(request, campaign),
        )
        return TemplateResponse(request, "admin/campaigns/campaign/launch.html", context)


class MemberCampaignsInline(ReadOnlyInline):
    """The member's campaigns on the member's admin page (registered in apps.py)."""

    model = CampaignSend
    fk_name = "member"
    verbose_name = "campaign"
    verbose_name_plural = "campaigns"
    fields = ("campaign", "group", "status", "assigned_at", "sent_at", "subject")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("campaign")


@admin.register(CampaignSend)
class CampaignSendAdmin(admin.ModelAdmin):
    """Who was in which campaign, in which group, and what happened (written by services)."""

    list_display = ("assigned_at", "campaign", "member_link", "group", "status", "sent_at")
    list_filter = ("status", "group", "trigger", "campaign")
    search_fields = ("member__member_number", "member__email", "campaign__name")
    list_select_related = ("campaign", "member")
    date_hierarchy = "assigned_at"
    show_full_result_count = False

    @admin.display(description="Member")
    def member_link(self, send):
        return link_to_member(send.member)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OfferAward)
class OfferAwardAdmin(CampaignSendAdmin):
    list_display = ("awarded_at", "campaign", "member_link", "points")
    list_filter = ("campaign",)
    search_fields = ("member__member_number", "campaign__name")
    date_hierarchy = "awarded_at"
