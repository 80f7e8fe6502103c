"""Member portal pages: thin views over the members services."""

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_http_methods

from . import services
from .forms import (
    ClaimablePasswordResetForm,
    CloseAccountForm,
    ConsentForm,
    EmailLoginForm,
    ProfileForm,
    SignUpForm,
)
from .models import Channel, MemberStatus


def staff_role_required(*roles: str, denied: str):
    """A decorator for staff pages: active staff in one of `roles`, or a superuser. Anonymous
    visitors go to the admin login; anyone else gets 403 with `denied` as the reason. The
    view keeps its roles as `staff_roles`, so links to it can be shown to the same people."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            allowed = user.is_active and (
                user.is_superuser or (user.is_staff and user.groups.filter(name__in=roles).exists())
            )
            if not allowed:
                raise PermissionDenied(denied)
            return view(request, *args, **kwargs)

        wrapper.staff_roles = frozenset(roles)
        return wrapper

    return decorator


def member_required(view):
    """The page is for a logged-in member, and only ever shows that member's own data."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(f"{reverse_lazy('portal:login')}?next={request.path}")
        member = getattr(request.user, "member", None)
        if member is None or member.status == MemberStatus.CLOSED:
            raise PermissionDenied("This page is for program members.")
        request.member = member
        return view(request, *args, **kwargs)

    return wrapper


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated and hasattr(request.user, "member"):
        return redirect("portal:home")
    # A friend's invitation link carries their referral code: /portal/signup/?ref=CODE
    form = SignUpForm(request.POST or None, initial={"referral_code": request.GET.get("ref", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        member, _ = services.enroll_member(
            channel=Channel.WEB,
            email=data["email"],
            password=data["password1"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            referral_code=data["referral_code"] or None,
            marketing_consent=data["marketing_consent"],
        )
        login(request, member.user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome! Your member number is {member.member_number}.")
        return redirect("portal:home")
    return render(request, "portal/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    authentication_form = EmailLoginForm
    redirect_authenticated_user = False


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "portal/password_reset.html"
    email_template_name = "emails/password_reset.txt"
    subject_template_name = "emails/password_reset_subject.txt"
    form_class = ClaimablePasswordResetForm
    success_url = reverse_lazy("portal:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")


@member_required
def home(request):
    return render(request, "portal/home.html", {"member": request.member})


@member_required
@require_http_methods(["GET", "POST"])
def profile(request):
    member = request.member
    form = ProfileForm(request.POST or None, instance=member)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        email = data.pop("email")
        services.update_profile(member=member, email=email, **data)
        messages.success(request, "Your profile is saved.")
        return redirect("portal:profile")
    consent_form = ConsentForm(initial={"marketing_consent": member.marketing_consent})
    return render(
        request,
        "portal/profile.html",
        {"form": form, "consent_form": consent_form, "member": member},
    )


@member_required
@require_http_methods(["POST"])
def consent(request):
    form = ConsentForm(request.POST)
    form.is_valid()
    given = form.cleaned_data.get("marketing_consent", False)
    services.set_consent(member=request.member, given=given, source="portal")
    messages.success(
        request,
        "Thank you: you will hear from us." if given else "Done: no more marketing messages.",
    )
    return redirect("portal:profile")


@member_required
def export_data(request):
    data = services.export_member_data(member=request.member)
    response = HttpResponse(
        json.dumps(data, indent=2, default=str), content_type="application/json"
    )
    filename = f"my-data-{request.member.member_number}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@member_required
@require_http_methods(["GET", "POST"])
def close_account(request):
    form = CloseAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.close_member(member=request.member)
        logout(request)
        messages.success(request, "Your account is closed and your personal data removed.")
        return redirect("portal:login")
    return render(request, "portal/close.html", {"form": form})
