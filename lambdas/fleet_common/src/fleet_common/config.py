"""Database settings from the environment, with the semantics of ``fleet_migrations.handler``.

| variable | meaning |
| --- | --- |
| ``DB_HOST`` | host name (required) |
| ``DB_PORT`` | port, default 5432 |
| ``DB_NAME`` | database name (required) |
| ``DB_SECRET_ARN`` | Secrets Manager secret with JSON ``username``/``password`` (required) |
| ``DB_SSLMODE`` | ``verify-full`` (default), ``verify-ca``, ``require`` or ``disable`` |
| ``DB_CA_BUNDLE`` | PEM bundle to verify the server with; default: the RDS CA bundle shipped |
|                  | in this package (``RDS_CA_BUNDLE``). With ``require`` it turns on full  |
|                  | verification.                                                           |

``certs/rds-global-bundle.pem`` is Amazon RDS's global CA bundle
(https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), shipped with the code so
that a function in a VPC without internet access verifies its database: chain and host name.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RDS_CA_BUNDLE", "SSL_MODES", "ConfigError", "Settings", "ssl_context_for"]

SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
DEFAULT_SSL_MODE = "verify-full"
RDS_CA_BUNDLE = str(Path(__file__).parent / "certs" / "rds-global-bundle.pem")


class ConfigError(Exception):
    """The environment or the secret is not usable. Messages never contain secret values."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    database: str
    secret_arn: str
    sslmode: str = DEFAULT_SSL_MODE
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``DB_HOST``, ``DB_PORT`` (5432), ``DB_NAME``, ``DB_SECRET_ARN``,
        ``DB_SSLMODE`` (``verify-full``) and ``DB_CA_BUNDLE`` (optional path to a PEM bundle)."""
        env = os.environ if env is None else env
        missing = [k for k in ("DB_HOST", "DB_NAME", "DB_SECRET_ARN") if not env.get(k)]
        if missing:
            raise ConfigError(f"missing environment variable(s): {', '.join(missing)}")
        port_text = env.get("DB_PORT") or "5432"
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"DB_PORT must be a port number, got {port_text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"DB_PORT must be a port number, got {port_text!r}")
        sslmode = (env.get("DB_SSLMODE") or DEFAULT_SSL_MODE).strip().lower()
        if sslmode not in SSL_MODES:
            raise ConfigError(f"DB_SSLMODE must be one of {', '.join(SSL_MODES)}, got {sslmode!r}")
        ca_bundle = env.get("DB_CA_BUNDLE") or None
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ConfigError(f"DB_CA_BUNDLE {ca_bundle!r} is not a file")
        return cls(
            host=env["DB_HOST"],
            port=port,
            database=env["DB_NAME"],
            secret_arn=env["DB_SECRET_ARN"],
            sslmode=sslmode,
            ca_bundle=ca_bundle,
        )


def ssl_context_for(sslmode: str, ca_bundle: str | None = None) -> ssl.SSLContext | bool:
    """The ``ssl_context`` argument for pg8000 for a libpq-style ``sslmode``.

    - ``disable``: ``False`` (plain TCP; a local test server only). Never ``None``: pg8000 reads
      ``None`` as "try TLS, fall back to plain text", which would hide a downgrade.
    - ``require``: TLS, certificate not verified (as libpq), unless ``ca_bundle`` is given:
      then chain and host name are verified (verify-full).
    - ``verify-ca``: chain verified, host name not.
    - ``verify-full``: chain and host name verified.

    ``verify-*`` verify against ``ca_bundle`` when given, else against the RDS CA bundle
    shipped with this package (never the system trust store, which holds no RDS CA).
    """
    if sslmode == "disable":
        return False
    if sslmode not in SSL_MODES:
        raise ConfigError(f"unknown sslmode {sslmode!r}")
    verify = sslmode != "require" or ca_bundle is not None
    ctx = ssl.create_default_context(cafile=(ca_bundle or RDS_CA_BUNDLE) if verify else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif sslmode == "verify-ca":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:  # verify-full, or require with a CA bundle
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
