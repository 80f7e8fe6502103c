"""Demo data for members and staff: plausible, repeatable (seeded), idempotent."""

import random
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from .models import Channel, Member, PreferredChannel
from .roles import ANALYST, MARKETER, SUPPORT
from .services import generate_member_number, generate_referral_code

DEMO_PASSWORD = "loyalty-demo-2026"
DEMO_MEMBER_EMAIL = "member@example.com"

FIRST_NAMES = [
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Sophie",
    "Lucas",
    "Mia",
    "Finn",
    "Julia",
    "Daan",
    "Sara",
    "Milan",
    "Anna",
    "Levi",
    "Lotte",
    "Sem",
    "Eva",
    "Luuk",
    "Lisa",
    "Jesse",
    "Nora",
    "Thomas",
    "Zoe",
    "Max",
    "Laura",
    "Jan",
    "Eline",
    "Ruben",
    "Fleur",
    "Tim",
    "Iris",
    "David",
    "Marie",
    "Paul",
    "Clara",
    "Felix",
    "Lena",
    "Jonas",
    "Hannah",
    "Elias",
    "Chloe",
    "Hugo",
    "Alice",
    "Louis",
    "Ines",
    "Leo",
]
LAST_NAMES = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "Mulder",
    "de Boer",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "Dekker",
    "Brouwer",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Martin",
    "Bernard",
    "Dubois",
    "Durand",
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Evans",
    "Rossi",
    "Russo",
    "Garcia",
]
COUNTRIES = [
    ("NL", 0.45, ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen"]),
    ("BE", 0.15, ["Antwerpen", "Gent", "Brussel", "Leuven"]),
    ("DE", 0.25, ["Berlin", "Köln", "Hamburg", "Düsseldorf", "München"]),
    ("FR", 0.10, ["Paris", "Lille", "Lyon"]),
    ("GB", 0.05, ["London", "Manchester"]),
]
CHANNELS = [
    (Channel.WEB, 0.45),
    (Channel.POS, 0.35),
    (Channel.API, 0.12),
    (Channel.ADMIN, 0.03),
    (Channel.IMPORT, 0.05),
]


def _pick(rng: random.Random, weighted):
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def seed_staff(stdout) -> None:
    User = get_user_model()
    password = make_password(DEMO_PASSWORD)
    admin, created = User.objects.get_or_create(
        username="admin",
        defaults={
            "is_staff": True,
            "is_superuser": True,
            "password": password,
            "email": "admin@example.com",
        },
    )
    for username, role in (("marketer", MARKETER), ("analyst", ANALYST), ("support", SUPPORT)):
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"is_staff": True, "password": password, "email": f"{username}@example.com"},
        )
        user.groups.add(Group.objects.get(name=role))


def seed_members(*, rng: random.Random, stdout, count: int = 2000) -> int:
    """About `count` members enrolled over the last three years, growing over time."""
    existing = set(
        Member.objects.filter(external_id__startswith="DEMO-").values_list("external_id", flat=True)
    )
    todo = [i for i in range(1, count + 1) if f"DEMO-{i:05d}" not in existing]
    # Draw every member's attributes even when they exist, so a re-run is repeatable.
    now = timezone.now()
    start = now - timedelta(days=3 * 365)
    User = get_user_model()
    password = make_password(DEMO_PASSWORD)
    taken_numbers = set(Member.objects.values_list("member_number", flat=True))
    taken_codes = set(Member.objects.values_list("referral_code", flat=True))
    rows = []
    for i in tqdm(range(1, count + 1), desc="members", file=stdout, disable=not todo):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        # Enrollment accelerates over time (the square root bends the spread towards now).
        enrolled = start + (now - start) * (rng.random() ** 0.7)
        country = _pick(rng, [(c, w) for c, w, _ in COUNTRIES])
        city = rng.choice(next(cities for c, _, cities in COUNTRIES if c == country))
        age = max(18, min(85, int(rng.gauss(40, 13))))
        birth = date(now.year - age, rng.randint(1, 12), rng.randint(1, 28))
        channel = _pick(rng, CHANNELS)
        consent = rng.random() < 0.62
        email = (
            DEMO_MEMBER_EMAIL
            if i == 1
            else f"{first}.{last}.{i}@example.com".lower().replace(" ", "")
        )
        if i == 1:
            first, last = "Demo", "Member"
        if f"DEMO-{i:05d}" in existing:
            continue
        number = generate_member_number()
        while number in taken_numbers:
            number = generate_member_number()
        code = generate_referral_code()
        while code in taken_codes:
            code = generate_referral_code()
        taken_numbers.add(number)
        taken_codes.add(code)
        rows.append(
            dict(  # noqa: C408
                email=email,
                first_name=first,
                last_name=last,
                birth_date=birth,
                country=country,
                city=city,
                enrollment_channel=channel,
                enrolled_at=enrolled,
                marketing_consent=consent,
                consent_changed_at=enrolled if consent else None,
                external_id=f"DEMO-{i:05d}",
                member_number=number,
                referral_code=code,
                phone=f"+31 6 {rng.randint(10000000, 99999999)}",
                preferred_channel=_pick(
                    rng, [(PreferredChannel.EMAIL, 0.8), (PreferredChannel.SMS, 0.2)]
                ),
            )
        )
    if not rows:
        return 0
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(
                    username=r["email"],
                    email=r["email"],
                    first_name=r["first_name"][:150],
                    last_name=r["last_name"][:150],
                    password=password,
                    date_joined=r["enrolled_at"],
                )
                for r in rows
            ],
            batch_size=1000,
        )
        Member.objects.bulk_create(
            [Member(user=u, **r) for u, r in zip(users, rows, strict=True)], batch_size=1000
        )
    return len(rows)
