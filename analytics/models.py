"""analytics: filled by its issue."""
