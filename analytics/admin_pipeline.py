"""Admin for pipeline runs, model fits and snapshots."""
