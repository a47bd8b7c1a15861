"""Code shared by the fleet-registry API functions.

Modules (import the one you need; this package imports nothing heavy by itself):

- :mod:`fleet_common.config`: database settings from the environment (``DB_*``).
- :mod:`fleet_common.db`: Secrets Manager credentials, a connection reused across invocations,
  :func:`fleet_common.db.transaction`.
- :mod:`fleet_common.observability`: the powertools ``logger``, ``tracer`` and ``metrics``.
- :mod:`fleet_common.errors`: API errors rendered as ``{"error": {...}}`` JSON bodies.
- :mod:`fleet_common.api`: :func:`~fleet_common.api.build_app`,
  :func:`~fleet_common.api.make_handler`, request parsing and JSON responses.
- :mod:`fleet_common.identity`: the verified caller (``Caller``: ``sub``, ``client_id``,
  ``scopes``) from the JWT authorizer's claims; ``caller(app)``.
- :mod:`fleet_common.limits`: every limit of the API (body, string fields, attributes, pages).
- :mod:`fleet_common.validation`: JSON-schema validation with one error per field, and the
  ``attributes`` limits.
- :mod:`fleet_common.pagination`: ``limit`` parsing and opaque keyset cursors.

Nothing here is test-only: the test helpers (events, fixtures, property-test strategies) are the
package fleet-testing (lambdas/fleet_testing), a test dependency that no function zip holds.
"""

__version__ = "0.1.0"
