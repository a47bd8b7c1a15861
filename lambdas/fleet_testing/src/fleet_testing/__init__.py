"""Test helpers of the fleet-registry packages: a test dependency (their ``test`` extra), never
a runtime one, so none of it reaches a function zip.

Modules (import the one you need; this package imports nothing by itself):

- :mod:`fleet_testing.events`: API Gateway HTTP API (v2.0) test events carrying a verified
  caller, a Lambda context stub and :func:`~fleet_testing.events.invoke`.
- :mod:`fleet_testing.pytest_plugin`: pytest fixtures (real PostgreSQL, moto Secrets Manager,
  captured logs).
- :mod:`fleet_testing.proptest`: hypothesis strategies and oracles for the property tests.
"""

__version__ = "0.1.0"
