"""The fixtures under test, used as every package uses them: imported by its conftest."""

from fleet_testing.pytest_plugin import fleet_api_env, fleet_database, fleet_logs

__all__ = ["fleet_api_env", "fleet_database", "fleet_logs"]
