"""Admin screens of analytics: pipeline runs and snapshots (admin_pipeline), segments and
goals (admin_definitions)."""

from . import admin_definitions, admin_pipeline  # noqa: F401
