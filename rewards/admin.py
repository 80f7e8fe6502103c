"""The marketer's and support agent's screens for the rewards engine.

Configuration (settings, earning rules, tiers, rewards, plans) is edited through validated
forms; the ledger, redemptions, subscriptions and referrals are read-only lists whose only
writes are actions and small views that call rewards.services.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html

from . import services
from .exceptions import AlreadyCancelled, InsufficientPoints
from .forms import (
    AdjustPointsForm,
    CancelRedemptionsForm,
    EarningRuleForm,
    GenerateCodesForm,
    MembershipPlanForm,
    ProgramSettingsForm,
    RewardForm,
    SimulateEventForm,
    TierForm,
    UploadCodesForm,
)
from .models import (
    EarningRule,
    MembershipPlan,
    PointsAccount,
    PointsTransaction,
    ProgramSettings,
    Redemption,
    Referral,
    Reward,
    RewardKind,
    Subscription,
    SubscriptionEvent,
    SubscriptionPayment,
    Tier,
)
from .selectors import program_settings

ADJUST_PERMISSION = "rewards.add_pointstransaction"


def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def member_link(member) -> str:
    url = reverse("admin:members_member_change", args=[member.pk])
    return format_html('<a href="{}">{}</a>', url, member)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list to look at: rows are written by services only."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTabularInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LatestFormSet(BaseInlineFormSet):
    """Only the newest rows: a member's ledger can be long."""

    limit = 20

    def get_queryset(self):
        if not hasattr(self, "_limited"):
            self._limited = super().get_queryset()[: self.limit]
        return self._limited


# -- configuration ---------------------------------------------------------------------------


@admin.register(ProgramSettings)
class ProgramSettingsAdmin(admin.ModelAdmin):
    """One row: the list goes straight to it."""

    form = ProgramSettingsForm
    fieldsets = (
        (None, {"fields": ("name", "points_name", "timezone", "currency")}),
        (
            "Points",
            {"fields": ("rounding", "cost_per_point", "pending_days")},
        ),
        ("Expiry", {"fields": ("expiry_policy", "expiry_months", "expiry_reminder_days")}),
        ("Tiers", {"fields": ("tier_basis", "tier_window_months")}),
        ("Referrals", {"fields": ("referrer_points", "referee_points", "referral_monthly_cap")}),
        ("Paid plans", {"fields": ("subscription_grace_days",)}),
    )

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row = program_settings()
        return redirect(reverse("admin:rewards_programsettings_change", args=[row.pk]))

    def get_object(self, request, object_id, from_field=None):
        if str(object_id) == str(ProgramSettings.SINGLETON_ID):
            return program_settings()  # created with defaults on first visit
        return None

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EarningRule)
class EarningRuleAdmin(admin.ModelAdmin):
    form = EarningRuleForm
    list_display = (
        "name",
        "kind",
        "event_type",
        "window",
        "priority",
        "stackable",
        "is_active",
    )
    list_filter = ("kind", "is_active", "stackable", "event_type", "channel")
    search_fields = ("name", "event_type", "touchpoint", "sku", "product_category")
    list_select_related = ("tier", "plan")
    fieldsets = (
        (None, {"fields": ("name", "kind", "is_active", "event_type")}),
        (
            "Points",
            {
                "fields": ("points_per_unit", "min_amount", "points", "factor"),
                "description": "Purchase rules: points per unit and an optional minimum amount. "
                "Fixed rules: points. Multipliers: factor. Leave the others empty.",
            },
        ),
        (
            "Which events",
            {
                "fields": (
                    ("channel", "touchpoint"),
                    ("product_category", "sku"),
                    ("tier", "plan"),
                ),
                "description": "Empty filters match everything. Tier and plan: multipliers only.",
            },
        ),
        ("When and order", {"fields": ("active_from", "active_until", "priority", "stackable")}),
        (
            "Per-member limits",
            {
                "classes": ("collapse",),
                "fields": (
                    ("max_count_per_day", "max_points_per_day"),
                    ("max_count_per_week", "max_points_per_week"),
                    ("max_count_per_month", "max_points_per_month"),
                    ("max_count_lifetime", "max_points_lifetime"),
                ),
            },
        ),
    )

    @admin.display(description="Window")
    def window(self, rule):
        if not rule.active_from and not rule.active_until:
            return "always"
        start = _when(rule.active_from) if rule.active_from else "…"
        end = _when(rule.active_until) if rule.active_until else "…"
        return f"{start} → {end}"

    def has_delete_permission(self, request, obj=None):
        # A rule's past awards point at it; switch it off instead.
        return request.user.is_superuser

    def get_urls(self):
        return [
            path(
                "simulate/",
                self.admin_site.admin_view(self.simulate_view),
                name="rewards_earningrule_simulate",
            ),
            *super().get_urls(),
        ]

    def simulate_view(self, request):
        """What an event would earn a member under the current rules; writes nothing."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = SimulateEventForm(request.POST or None)
        award = member = None
        if request.method == "POST" and form.is_valid():
            member = form.cleaned_data["member"]
            award = services.simulate_award(member=member, event=form.event())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Rule simulator",
            "form": form,
            "award": award,
            "member": member,
            "points_name": program_settings().points_name,
        }
        return TemplateResponse(request, "admin/rewards/earningrule/simulate.html", context)


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    form = TierForm
    list_display = (
        "rank",
        "name",
        "points_threshold",
        "spend_threshold",
        "earn_multiplier",
        "guaranteed_months",
    )
    list_display_links = ("rank", "name")
    ordering = ("rank",)
    fields = (
        "name",
        "rank",
        "points_threshold",
        "spend_threshold",
        "earn_multiplier",
        "guaranteed_months",
        "perks",
    )

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    form = RewardForm
    list_display = (
        "name",
        "kind",
        "points_cost",
        "stock",
        "free_codes",
        "per_member_limit",
        "min_tier",
        "is_active",
    )
    list_filter = ("kind", "is_active", "min_tier")
    search_fields = ("name",)
    list_select_related = ("min_tier",)
    readonly_fields = ("code_pool",)
    fieldsets = (
        (None, {"fields": ("name", "description", "kind", "points_cost", "value")}),
        ("Availability", {"fields": ("is_active", "active_from", "active_until", "min_tier")}),
        ("Stock", {"fields": ("stock", "per_member_limit", "code_pool")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                free_code_count=Count("codes", filter=Q(codes__redemption__isnull=True)),
            )
        )

    @admin.display(description="Free codes", ordering="free_code_count")
    def free_codes(self, reward):
        return reward.free_code_count if reward.kind == RewardKind.COUPON else "–"

    @admin.display(description="Code pool")
    def code_pool(self, reward):
        if reward.pk is None:
            return "Save the reward first, then add codes."
        if reward.kind != RewardKind.COUPON:
            return "Only coupon rewards hand out codes from a pool."
        total = reward.codes.count()
        url = reverse("admin:rewards_reward_codes", args=[reward.pk])
        return format_html(
            '{} free of {} codes. <a href="{}">Add codes</a>', reward.free_code_count, total, url
        )

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_urls(self):
        return [
            path(
                "<path:object_id>/codes/",
                self.admin_site.admin_view(self.codes_view),
                name="rewards_reward_codes",
            ),
            *super().get_urls(),
        ]

    def codes_view(self, request, object_id):
        """Generate codes, or upload a list, into a coupon reward's pool."""
        reward = self.get_object(request, object_id)
        if reward is None:
            raise Http404("No such reward.")
        if not request.user.has_perm("rewards.add_rewardcode"):
            raise PermissionDenied
        is_coupon = reward.kind == RewardKind.COUPON
        generate_form = GenerateCodesForm()
        upload_form = UploadCodesForm()
        if request.method == "POST" and is_coupon:
            if "_generate" in request.POST:
                generate_form = GenerateCodesForm(request.POST)
                if generate_form.is_valid():
                    added = services.generate_reward_codes(
                        reward=reward,
                        count=generate_form.cleaned_data["count"],
                        prefix=generate_form.cleaned_data["prefix"],
                    )
                    self.message_user(request, f"Generated {added} codes.", messages.SUCCESS)
                    return redirect(request.path)
            else:
                upload_form = UploadCodesForm(request.POST, request.FILES)
                if upload_form.is_valid():
                    codes = upload_form.cleaned_data["parsed_codes"]
                    added = services.add_reward_codes(reward=reward, codes=codes)
                    skipped = len(set(codes)) - added
                    note = f" ({skipped} already in the pool, skipped)" if skipped else ""
                    self.message_user(request, f"Added {added} codes{note}.", messages.SUCCESS)
                    return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Codes for {reward}",
            "reward": reward,
            "is_coupon": is_coupon,
            "free": reward.free_code_count,
            "total": reward.codes.count(),
            "generate_form": generate_form,
            "upload_form": upload_form,
        }
        return TemplateResponse(request, "admin/rewards/reward/codes.html", context)


@admin.register(MembershipPlan)
class MembershipPlanAdmin(admin.ModelAdmin):
    form = MembershipPlanForm
    list_display = (
        "name",
        "price",
        "currency",
        "billing_period_months",
        "trial_days",
        "earn_multiplier",
        "renewal_bonus_points",
        "granted_tier",
        "is_active",
    )
    list_filter = ("is_active",)
    list_select_related = ("granted_tier",)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


# -- ledger and member activity (read-only) --------------------------------------------------


@admin.register(PointsTransaction)
class PointsTransactionAdmin(ReadOnlyAdmin):
    """The ledger, and the audit of every manual adjustment (actor and reason)."""

    list_display = (
        "created_at",
        "member_column",
        "kind",
        "points",
        "pending_points",
        "balance_after",
        "reason",
        "actor",
        "source",
    )
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter))
    search_fields = ("member__member_number", "member__email", "=source_ref")
    list_select_related = ("member", "actor")
    show_full_result_count = False
    fields = (
        "member",
        "kind",
        "points",
        "pending_points",
        "qualifying_points",
        "balance_after",
        "reason",
        "actor",
        "source",
        "source_ref",
        "reverses",
        "occurred_at",
        "created_at",
        "idempotency_key",
        "breakdown",
    )

    @admin.display(description="Member", ordering="member__member_number")
    def member_column(self, txn):
        return member_link(txn.member)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_adjust": _can_adjust(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path(
                "adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="rewards_pointstransaction_adjust",
            ),
            *super().get_urls(),
        ]

    def adjust_view(self, request):
        """Support adds or removes points with a reason; one ledger row per form shown."""
        if not _can_adjust(request):
            raise PermissionDenied
        if request.method == "POST":
            form = AdjustPointsForm(request.POST)
            if form.is_valid():
                done = _adjust(request, form)
                if done is not None:
                    return done
        else:
            form = AdjustPointsForm(initial={"member": request.GET.get("member", "")})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Adjust points",
            "form": form,
            "points_name": program_settings().points_name,
        }
        return TemplateResponse(request, "admin/rewards/pointstransaction/adjust.html", context)


def _can_adjust(request) -> bool:
    return request.user.has_perm(ADJUST_PERMISSION)


def _adjust(request, form):
    data = form.cleaned_data
    member = data["member"]
    key = data["idempotency_key"]
    repeat = PointsTransaction.objects.filter(idempotency_key=key).exists()
    try:
        txn = services.adjust_points(
            member=member,
            points=data["points"],
            reason=data["reason"],
            actor=request.user,
            idempotency_key=key,
        )
    except InsufficientPoints as exc:
        balance = exc.details.get("balance")
        form.add_error(
            "points",
            f"{exc.message} The balance is {balance}; {-data['points']} cannot be taken away.",
        )
        return None
    if repeat:
        messages.warning(
            request,
            f"This form was already submitted: {member} was adjusted once ({txn.points:+d}).",
        )
    else:
        messages.success(
            request, f"Adjusted {member} by {txn.points:+d}; the balance is {txn.balance_after}."
        )
    if request.user.has_perm("members.view_member"):
        return redirect(reverse("admin:members_member_change", args=[member.pk]))
    changelist = reverse("admin:rewards_pointstransaction_changelist")
    return redirect(f"{changelist}?member__id__exact={member.pk}")


@admin.register(PointsAccount)
class PointsAccountAdmin(ReadOnlyAdmin):
    list_display = (
        "member_column",
        "balance",
        "pending",
        "lifetime_earned",
        "tier",
        "tier_since",
        "last_activity_at",
        "adjust_link",
    )
    list_filter = ("tier",)
    search_fields = ("member__member_number", "member__email")
    list_select_related = ("member", "tier")
    show_full_result_count = False

    @admin.display(description="Member", ordering="member__member_number")
    def member_column(self, account):
        return member_link(account.member)

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if _can_adjust(request) else [c for c in shown if c != "adjust_link"]

    @admin.display(description="")
    def adjust_link(self, account):
        url = reverse("admin:rewards_pointstransaction_adjust")
        return format_html(
            '<a href="{}?member={}">Adjust points</a>', url, account.member.member_number
        )


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    """Read-only apart from the cancel action (Support holds change_redemption for it)."""

    list_display = (
        "created_at",
        "member_column",
        "reward",
        "points",
        "status",
        "code",
        "cancelled_at",
        "cancelled_by",
    )
    list_filter = ("status", "reward", ("created_at", admin.DateFieldListFilter))
    search_fields = ("member__member_number", "member__email", "code")
    list_select_related = ("member", "reward", "cancelled_by")
    actions = ["cancel_selected"]
    fields = (
        "member",
        "reward",
        "points",
        "status",
        "code",
        "transaction",
        "refund_transaction",
        "actor",
        "created_at",
        "cancelled_at",
        "cancelled_by",
        "cancel_reason",
        "idempotency_key",
    )
    readonly_fields = fields

    @admin.display(description="Member", ordering="member__member_number")
    def member_column(self, redemption):
        return member_link(redemption.member)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # change_redemption allows the cancel action; a row itself is never edited.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected redemptions", permissions=["change"])
    def cancel_selected(self, request, queryset):
        """Ask for a reason on an intermediate page, then refund each redemption."""
        form = CancelRedemptionsForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            cancelled = 0
            for redemption in queryset.select_related("member", "reward"):
                try:
                    services.cancel_redemption(
                        redemption=redemption, actor=request.user, reason=reason
                    )
                    cancelled += 1
                except AlreadyCancelled:
                    self.message_user(
                        request, f"{redemption}: already cancelled.", messages.WARNING
                    )
            self.message_user(
                request,
                f"{cancelled} redemption(s) cancelled; their points are back.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Cancel redemptions",
            "form": form,
            "queryset": queryset.select_related("member", "reward"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "cancel_selected",
        }
        return TemplateResponse(
            request, "admin/rewards/redemption/cancel_confirmation.html", context
        )


class SubscriptionEventInline(ReadOnlyTabularInline):
    model = SubscriptionEvent
    fields = ("occurred_at", "from_status", "to_status", "note")
    readonly_fields = fields
    show_change_link = False


class SubscriptionPaymentInline(ReadOnlyTabularInline):
    model = SubscriptionPayment
    fields = ("paid_at", "amount", "currency", "payment_ref", "period_start", "period_end")
    readonly_fields = fields
    show_change_link = False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = (
        "member_column",
        "plan",
        "status",
        "started_at",
        "current_period_end",
        "cancel_at_period_end",
        "ended_at",
    )
    list_filter = ("status", "plan", "cancel_at_period_end")
    search_fields = ("member__member_number", "member__email")
    list_select_related = ("member", "plan")
    inlines = [SubscriptionEventInline, SubscriptionPaymentInline]

    @admin.display(description="Member", ordering="member__member_number")
    def member_column(self, subscription):
        return member_link(subscription.member)


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "referrer", "referee", "status", "reason", "qualified_at")
    list_filter = ("status",)
    search_fields = (
        "referrer__member_number",
        "referrer__email",
        "referee__member_number",
        "referee__email",
    )
    list_select_related = ("referrer", "referee")


# -- sections of the member's admin page (registered in apps.py) -----------------------------


class MemberPointsAccountInline(admin.StackedInline):
    model = PointsAccount
    template = "admin/rewards/member_points_account_inline.html"
    verbose_name = "points account"
    fields = (
        ("balance", "pending", "lifetime_earned"),
        ("tier", "tier_since"),
        "last_activity_at",
    )
    readonly_fields = (
        "balance",
        "pending",
        "lifetime_earned",
        "tier",
        "tier_since",
        "last_activity_at",
    )
    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MemberTransactionsInline(ReadOnlyTabularInline):
    model = PointsTransaction
    formset = LatestFormSet
    template = "admin/rewards/member_transactions_inline.html"
    verbose_name_plural = "latest points transactions"
    fk_name = "member"
    fields = ("created_at", "kind", "points", "balance_after", "reason", "actor")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class MemberRedemptionsInline(ReadOnlyTabularInline):
    model = Redemption
    formset = LatestFormSet
    verbose_name_plural = "latest redemptions"
    fk_name = "member"
    fields = ("created_at", "reward", "points", "status", "code", "cancel_reason")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reward")


class MemberSubscriptionsInline(ReadOnlyTabularInline):
    model = Subscription
    formset = LatestFormSet
    verbose_name_plural = "paid plan subscriptions"
    fk_name = "member"
    fields = ("plan", "status", "started_at", "current_period_end", "cancel_at_period_end")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan")


MEMBER_ADMIN_INLINES = (
    MemberPointsAccountInline,
    MemberTransactionsInline,
    MemberRedemptionsInline,
    MemberSubscriptionsInline,
)
