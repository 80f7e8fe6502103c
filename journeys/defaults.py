"""The default journey, seeded by a data migration and by services.seed_default_stages().

Functions here take the model classes as arguments so a migration can pass its historical
models.
"""

# (order, name, slug, kind, description)
DEFAULT_STAGES = [
    (1, "Awareness", "awareness", "lifecycle", "Has signed up or looked around."),
    (2, "Consideration", "consideration", "lifecycle", "Has put something in a cart."),
    (3, "First purchase", "first-purchase", "lifecycle", "Has bought once."),
    (4, "Repeat", "repeat", "lifecycle", "Two or more purchases within a year."),
    (5, "Loyal", "loyal", "lifecycle", "Five or more purchases within a year."),
    (6, "Advocate", "advocate", "lifecycle", "Reviews, shares or refers."),
    (7, "At risk", "at-risk", "inactivity", "No events for 90 days."),
    (8, "Lapsed", "lapsed", "inactivity", "No events for 180 days."),
]

# (stage slug, kind, fields)
DEFAULT_RULES = [
    ("awareness", "on_event_type", {"event_type": "signup"}),
    ("awareness", "on_event_type", {"event_type": "page_view"}),
    ("consideration", "on_event_type", {"event_type": "cart_add"}),
    ("first-purchase", "on_event_type", {"event_type": "purchase"}),
    ("repeat", "purchase_count_in_window", {"count": 2, "window_days": 365}),
    ("loyal", "purchase_count_in_window", {"count": 5, "window_days": 365}),
    ("advocate", "advocacy_events", {"count": 1, "window_days": 365}),
    ("at-risk", "inactivity_days", {"days": 90}),
    ("lapsed", "inactivity_days", {"days": 180}),
]


def seed_stages(JourneyStage, StageRule) -> int:
    """Create the default stages and rules when the journey has no stages; returns how many
    stages were created (0 when the program already has its own)."""
    if JourneyStage.objects.exists():
        return 0
    stages = {}
    for order, name, slug, kind, description in DEFAULT_STAGES:
        stages[slug] = JourneyStage.objects.create(
            order=order, name=name, slug=slug, kind=kind, description=description
        )
    for slug, kind, fields in DEFAULT_RULES:
        StageRule.objects.create(stage=stages[slug], kind=kind, **fields)
    return len(stages)
