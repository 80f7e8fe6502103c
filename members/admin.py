"""The staff screens for members and API keys. Actions call services."""

from django.contrib import admin, messages

from . import registry, services
from .exceptions import DomainError
from .models import ApiKey, ConsentChange, Member


class ConsentChangeInline(admin.TabularInline):
    model = ConsentChange
    extra = 0
    can_delete = False
    fields = ("given", "changed_at", "source")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = (
        "member_number",
        "full_name",
        "email",
        "status",
        "enrollment_channel",
        "enrolled_at",
        "country",
    )
    list_filter = (
        "status",
        "enrollment_channel",
        ("enrolled_at", admin.DateFieldListFilter),
        "country",
    )
    search_fields = ("member_number", "email", "first_name", "last_name", "external_id", "=phone")
    date_hierarchy = "enrolled_at"
    readonly_fields = (
        "member_number",
        "referral_code",
        "enrolled_at",
        "enrollment_channel",
        "consent_changed_at",
        "closed_at",
        "user",
        "status",
        "marketing_consent",
    )
    raw_id_fields = ("referred_by",)
    list_select_related = True
    fieldsets = (
        (None, {"fields": ("member_number", "status", "user", "referral_code", "referred_by")}),
        (
            "Profile",
            {
                "fields": (
                    ("first_name", "last_name"),
                    "email",
                    "phone",
                    "birth_date",
                    ("country", "city"),
                    ("preferred_channel", "locale"),
                    "external_id",
                )
            },
        ),
        ("Consent", {"fields": ("marketing_consent", "consent_changed_at")}),
        ("Enrollment", {"fields": ("enrollment_channel", "enrolled_at", "closed_at")}),
    )
    actions = ["suspend_selected", "reactivate_selected", "close_selected"]

    def get_inlines(self, request, obj):
        # Later apps add their sections (points, events, surveys, metrics) via the registry.
        return [ConsentChangeInline, *registry.member_admin_inlines] if obj else []

    def has_add_permission(self, request):
        return request.user.has_perm("members.add_member")

    def save_model(self, request, obj, form, change):
        if change:
            changes = {
                f: form.cleaned_data[f] for f in form.changed_data if f in services.PROFILE_FIELDS
            }
            email = form.cleaned_data.get("email") if "email" in form.changed_data else None
            external_id = (
                form.cleaned_data.get("external_id") or ""
                if "external_id" in form.changed_data
                else None
            )
            services.update_profile(
                member=obj, email=email or None, external_id=external_id, **changes
            )
        else:
            profile = {f: form.cleaned_data.get(f) for f in services.PROFILE_FIELDS}
            member, _ = services.enroll_member(
                channel="admin",
                email=form.cleaned_data.get("email"),
                external_id=form.cleaned_data.get("external_id"),
                **profile,
            )
            obj.pk = member.pk

    def _run(self, request, queryset, service, done: str):
        count = 0
        for member in queryset:
            try:
                service(member=member)
                count += 1
            except DomainError as exc:
                self.message_user(request, f"{member}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{count} member(s) {done}.", messages.SUCCESS)

    @admin.action(description="Suspend selected members", permissions=["change"])
    def suspend_selected(self, request, queryset):
        self._run(request, queryset, services.suspend_member, "suspended")

    @admin.action(description="Reactivate selected members", permissions=["change"])
    def reactivate_selected(self, request, queryset):
        self._run(request, queryset, services.reactivate_member, "reactivated")

    @admin.action(description="Close selected members (anonymise)", permissions=["delete"])
    def close_selected(self, request, queryset):
        self._run(request, queryset, services.close_member, "closed")

    def has_delete_permission(self, request, obj=None):
        # Members are closed (anonymised), never deleted, so the ledger stays whole.
        return False if obj is not None else request.user.has_perm("members.delete_member")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked")
    list_filter = ("revoked",)
    search_fields = ("name", "prefix", "user__username")
    fields = ("name", "user", "prefix", "created_at", "last_used_at", "revoked")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    raw_id_fields = ("user",)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.create_api_key(user=obj.user, name=obj.name)
        obj.pk = key.pk
        obj.prefix = key.prefix
        self.message_user(
            request,
            f"The new key is {raw} — copy it now: it is stored hashed and will not be shown again.",
            messages.WARNING,
        )
