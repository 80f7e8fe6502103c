"""journeys: filled by its issue."""
