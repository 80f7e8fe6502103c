"""campaigns: filled by its issue."""
