"""Every write in the journeys app goes through these functions (see each module)."""

from .batch import MAX_BATCH_SIZE, ingest_events
from .carts import detect_abandoned_carts
from .imports import ImportFailed, ImportReport, enroll_customers, import_transactions
from .ingest import MAX_CLOCK_SKEW, EventData, IngestResult, ingest_event
from .stages import JourneyConfig, JourneyState, Move, evaluate_stages, seed_default_stages

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_CLOCK_SKEW",
    "EventData",
    "ImportFailed",
    "ImportReport",
    "IngestResult",
    "JourneyConfig",
    "JourneyState",
    "Move",
    "detect_abandoned_carts",
    "enroll_customers",
    "evaluate_stages",
    "import_transactions",
    "ingest_event",
    "ingest_events",
    "seed_default_stages",
]
