"""Fixtures from fleet_testing.pytest_plugin: a real PostgreSQL database per test module
(FLEET_TEST_DATABASE_URL), moto's Secrets Manager, the DB_* environment, captured logs."""

from fleet_testing.pytest_plugin import fleet_api_env, fleet_database, fleet_logs

__all__ = ["fleet_api_env", "fleet_database", "fleet_logs"]
