"""Forward-only SQL migrations for the fleet-registry PostgreSQL database."""

from .runner import Migration as Migration
from .runner import MigrationError as MigrationError
from .runner import applied_versions as applied_versions
from .runner import apply_migrations as apply_migrations
from .runner import current_version as current_version
from .runner import discover as discover
