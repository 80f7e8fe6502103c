"""Members: the people in the program, their consent, and the API keys integrators use."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Channel(models.TextChoices):
    WEB = "web", "Web"
    POS = "pos", "Point of sale"
    API = "api", "API"
    IMPORT = "import", "Import"
    ADMIN = "admin", "Admin"


class PreferredChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push notification"
    POST = "post", "Post"


class MemberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


class Member(models.Model):
    """A customer enrolled in the program.

    Email and external_id are both optional (a POS or import enrollment may know only one of
    them) but unique when present; email is unique regardless of case and stored lower-cased.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="member",
    )
    member_number = models.CharField(max_length=12, unique=True, editable=False)
    email = models.EmailField(max_length=254, null=True, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code")
    city = models.CharField(max_length=100, blank=True)
    preferred_channel = models.CharField(
        max_length=10, choices=PreferredChannel.choices, default=PreferredChannel.EMAIL
    )
    locale = models.CharField(max_length=10, default="en")
    marketing_consent = models.BooleanField(default=False)
    consent_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When consent was last given or withdrawn"
    )
    enrollment_channel = models.CharField(max_length=10, choices=Channel.choices)
    enrolled_at = models.DateTimeField(db_index=True)
    status = models.CharField(
        max_length=10, choices=MemberStatus.choices, default=MemberStatus.ACTIVE, db_index=True
    )
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    referral_code = models.CharField(max_length=12, unique=True, editable=False)
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            # NULLs never clash, so members without an email are fine.
            models.UniqueConstraint(Lower("email"), name="member_email_ci_unique"),
        ]
        indexes = [
            models.Index(fields=["enrollment_channel", "enrolled_at"]),
        ]

    def __str__(self) -> str:
        name = self.full_name
        return f"{self.member_number} {name}".strip()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_active(self) -> bool:
        return self.status == MemberStatus.ACTIVE


class ConsentChange(models.Model):
    """The history of marketing consent, kept for proof of consent."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consent_changes")
    given = models.BooleanField()
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=20)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{'given' if self.given else 'withdrawn'} at {self.changed_at:%Y-%m-%d %H:%M}"


class ApiKey(models.Model):
    """A key for the REST API. Only a SHA-256 digest is stored; the key is shown once.

    Keys are 256-bit random tokens, so a fast digest is safe (nothing to brute-force) and keeps
    authentication cheap on the event-ingestion hot path, unlike a password hasher.
    """

    PREFIX_LENGTH = 8

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def digest(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @classmethod
    def generate(cls) -> tuple[str, str]:
        """A new raw key and its prefix: '<prefix>.<secret>'."""
        prefix = secrets.token_hex(cls.PREFIX_LENGTH // 2)
        return f"{prefix}.{secrets.token_urlsafe(32)}", prefix
