"""Forward-only SQL migrations for the fleet-registry PostgreSQL database."""

from .runner import (
    Migration,
    MigrationError,
    applied_versions,
    apply_migrations,
    current_version,
    discover,
)

__all__ = [
    "Migration",
    "MigrationError",
    "applied_versions",
    "apply_migrations",
    "current_version",
    "discover",
]
