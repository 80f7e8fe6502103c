"""Admin for segments and goals."""
