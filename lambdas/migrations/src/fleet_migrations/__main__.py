"""``python -m fleet_migrations``: the Lambda's work from a shell (local runs, CI).

Reads the same environment variables as the Lambda, prints the result as JSON on stdout and
sends the (JSON) log lines to stderr. Exit status 0 on success, 1 on a failed run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TextIO, cast

import pg8000.exceptions
from fleet_common.observability import logger as fleet_common_logger

from .handler import ConfigError, logger, run
from .runner import MigrationError

_EPILOG = """\
environment:
  DB_HOST        database host (required)
  DB_PORT        database port (default 5432)
  DB_NAME        database name (required)
  DB_SECRET_ARN  Secrets Manager secret holding {"username": ..., "password": ...} (required)
  DB_SSLMODE     verify-full (default) | verify-ca | require | disable
  DB_CA_BUNDLE   PEM bundle to verify the server certificate (default: the RDS CA bundle
                 shipped in fleet_common; makes require verify-full)
  DB_ROLE_SECRETS JSON object of database role -> ARN of its secret: each role's password
                 is set from its secret (generated into it when empty); default: none
  AWS_ENDPOINT_URL, AWS_REGION, ... as usual for boto3 (e.g. a local emulator)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleet_migrations",
        description="Apply the pending fleet-registry database migrations.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    # stdout carries the result only; the log (ours and fleet_common.db's) goes to stderr.
    for log in (logger, fleet_common_logger):
        # powertools logs through a StreamHandler (registered_handler is typed as any Handler)
        cast("logging.StreamHandler[TextIO]", log.registered_handler).setStream(sys.stderr)
    try:
        result = run()
    except (ConfigError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except pg8000.exceptions.Error as exc:  # cannot connect, authentication failed, ...
        print(f"error: database: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
