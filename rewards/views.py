"""Member portal pages for points, rewards and the paid plan: thin views over the rewards
services and selectors. Every page reads request.member only, so no URL names another member."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from members.exceptions import DomainError, MemberNotActive
from members.views import member_required

from . import services
from .exceptions import AlreadySubscribed, InsufficientPoints
from .models import (
    MembershipPlan,
    PointsAccount,
    Redemption,
    RedemptionStatus,
    Reward,
    Subscription,
    SubscriptionStatus,
)
from .portal_forms import JoinPlanForm, RedeemForm
from .selectors import (
    active_rewards_for,
    live_subscription,
    member_referrals,
    member_transactions,
    program_settings,
)

PAGE_SIZE = 25


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _render(request, template: str, context: dict, status: int = 200):
    """Render with what every rewards page shows: the program's name, points name and zone."""
    program = program_settings()
    return render(
        request,
        template,
        {
            "member": request.member,
            "program": program,
            "program_name": program.name,
            "points_name": program.points_name,
            "program_zone": program.timezone,
            **context,
        },
        status=status,
    )


def _balance(member) -> int:
    return (
        PointsAccount.objects.filter(member_id=member.pk).values_list("balance", flat=True).first()
        or 0
    )


def _error_message(exc: DomainError, points_name: str) -> str:
    """A domain error as a sentence for the member; the point is that nothing happened."""
    if isinstance(exc, InsufficientPoints):
        balance = exc.details.get("balance")
        requested = exc.details.get("requested")
        if balance is not None and requested is not None:
            return (
                f"You do not have enough {points_name}: this costs {requested} and you have "
                f"{balance}. Nothing was redeemed."
            )
    if isinstance(exc, MemberNotActive):
        return "Your membership is not active at the moment, so nothing was changed."
    return f"{exc.message.rstrip('.')}. Nothing was changed."


# -- points --------------------------------------------------------------------------------------


@member_required
def history(request):
    page = _page(request, member_transactions(request.member))
    return _render(
        request,
        "rewards/history.html",
        {"page": page, "balance": _balance(request.member)},
    )


# -- rewards -------------------------------------------------------------------------------------


@dataclass
class Offer:
    reward: Reward
    can_afford: bool
    missing: int
    limit_reached: bool

    @property
    def can_redeem(self) -> bool:
        return self.can_afford and not self.limit_reached


def _redemptions_used(member, rewards: list[Reward]) -> dict[int, int]:
    limited = [r.pk for r in rewards if r.per_member_limit is not None]
    if not limited:
        return {}
    return dict(
        Redemption.objects.filter(member_id=member.pk, reward_id__in=limited)
        .exclude(status=RedemptionStatus.CANCELLED)
        .values("reward_id")
        .annotate(used=Count("id"))
        .values_list("reward_id", "used")
    )


@member_required
def catalogue(request):
    member = request.member
    balance = _balance(member)
    rewards = list(active_rewards_for(member))
    used = _redemptions_used(member, rewards)
    offers = [
        Offer(
            reward=reward,
            can_afford=balance >= reward.points_cost,
            missing=max(0, reward.points_cost - balance),
            limit_reached=reward.per_member_limit is not None
            and used.get(reward.pk, 0) >= reward.per_member_limit,
        )
        for reward in rewards
    ]
    return _render(request, "rewards/catalogue.html", {"offers": offers, "balance": balance})


@member_required
@require_http_methods(["GET", "POST"])
def redeem(request, reward_id: int):
    """GET: the confirm page (with a fresh idempotency key). POST: redeem, once per key."""
    member = request.member
    if request.method == "POST":
        reward = get_object_or_404(Reward, pk=reward_id)
        form = RedeemForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Please confirm the redemption again.")
            return redirect("rewards:redeem", reward_id=reward.pk)
        # Scoped to the member, so a key can never return someone else's redemption.
        key = f"portal:{member.pk}:{form.cleaned_data['idempotency_key']}"
        try:
            redemption = services.redeem_reward(member=member, reward=reward, idempotency_key=key)
        except DomainError as exc:
            messages.error(request, _error_message(exc, program_settings().points_name))
            return redirect("rewards:catalogue")
        messages.success(
            request,
            f"You redeemed {reward.name}. Your code is {redemption.code}; your new balance is "
            f"{redemption.transaction.balance_after} {program_settings().points_name}.",
        )
        return redirect("rewards:redemption", pk=redemption.pk)

    reward = get_object_or_404(active_rewards_for(member), pk=reward_id)
    balance = _balance(member)
    return _render(
        request,
        "rewards/redeem_confirm.html",
        {
            "reward": reward,
            "balance": balance,
            "balance_after": balance - reward.points_cost,
            "can_afford": balance >= reward.points_cost,
            "missing": max(0, reward.points_cost - balance),
            "form": RedeemForm.fresh(),
        },
    )


@member_required
def redemption(request, pk: int):
    found = get_object_or_404(
        Redemption.objects.select_related("reward", "transaction"), pk=pk, member=request.member
    )
    return _render(
        request,
        "rewards/redemption.html",
        {"redemption": found, "balance": _balance(request.member)},
    )


@member_required
def my_rewards(request):
    redemptions = Redemption.objects.filter(member=request.member).select_related("reward")
    return _render(request, "rewards/my_rewards.html", {"page": _page(request, redemptions)})


# -- membership plan -----------------------------------------------------------------------------


@member_required
def membership(request):
    subscription = Subscription.objects.filter(member=request.member).select_related("plan").first()
    plans = MembershipPlan.objects.filter(is_active=True).select_related("granted_tier")
    return _render(
        request,
        "rewards/membership.html",
        {
            "plans": plans,
            "subscription": subscription,
            "is_live": bool(subscription and subscription.is_live),
        },
    )


@member_required
@require_http_methods(["GET", "POST"])
def join_plan(request, plan_id: int):
    member = request.member
    if live_subscription(member) is not None:
        messages.info(request, "You already have a membership plan.")
        return redirect("rewards:membership")
    form = JoinPlanForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        plan = get_object_or_404(MembershipPlan, pk=plan_id)
        if form.is_valid():
            try:
                subscription = services.subscribe(member=member, plan=plan)
            except AlreadySubscribed:
                messages.info(request, "You already have a membership plan.")
                return redirect("rewards:membership")
            except DomainError as exc:
                messages.error(request, _error_message(exc, program_settings().points_name))
                return redirect("rewards:membership")
            messages.success(
                request,
                f"Welcome to {plan.name}! "
                + (
                    "Your free trial has started."
                    if subscription.status == SubscriptionStatus.TRIALING
                    else "Your membership is active."
                ),
            )
            return redirect("rewards:membership")
    else:
        plan = get_object_or_404(MembershipPlan, pk=plan_id, is_active=True)
    return _render(request, "rewards/join_confirm.html", {"plan": plan, "form": form})


@member_required
@require_http_methods(["GET", "POST"])
def cancel_plan(request):
    subscription = live_subscription(request.member)
    if subscription is None:
        messages.info(request, "You have no membership plan to cancel.")
        return redirect("rewards:membership")
    if subscription.cancel_at_period_end:
        messages.info(request, "Your membership is already cancelled for the end of the period.")
        return redirect("rewards:membership")
    if request.method == "POST":
        services.cancel_subscription(subscription=subscription, at_period_end=True)
        messages.success(
            request,
            f"Your {subscription.plan.name} membership is cancelled; it stays active until the "
            "end of the current period.",
        )
        return redirect("rewards:membership")
    return _render(request, "rewards/cancel_confirm.html", {"subscription": subscription})


@member_required
@require_POST
def resume_plan(request):
    subscription = live_subscription(request.member)
    if subscription is None:
        raise Http404("No membership plan to keep.")
    services.resume_subscription(subscription=subscription)
    messages.success(
        request, f"Good to have you: your {subscription.plan.name} membership goes on."
    )
    return redirect("rewards:membership")


# -- referrals -----------------------------------------------------------------------------------


@member_required
def referrals(request):
    program = program_settings()
    signup_url = request.build_absolute_uri(
        f"{reverse('portal:signup')}?ref={request.member.referral_code}"
    )
    return _render(
        request,
        "rewards/referrals.html",
        {
            "referrals": member_referrals(request.member),
            "signup_url": signup_url,
            "referrer_points": program.referrer_points,
            "referee_points": program.referee_points,
        },
    )
