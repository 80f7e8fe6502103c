"""feedback: filled by its issue."""
