"""The local AWS emulator: moto's server over HTTPS, with a few emulator gaps closed.

Run as::

    python -m stackrun.local.emulator.server --host 127.0.0.1 --port 4566 --cert C --key K

The app is built the way ``moto.server.main`` builds it (``DomainDispatcherApplication`` over
``create_backend_app``, moto's request handler, werkzeug's threaded server); the differences
are listed here. Each one closes a gap between moto (5.2.x) and AWS that would otherwise make
a module that is right for AWS fail, or never converge, against the emulator. None of them
changes what the modules do in real AWS.

HTTPS only
    The server speaks TLS with a certificate from the state directory's private CA
    (``ca.py``). This is what lets a TLS-only bucket policy (below) be evaluated honestly:
    every request the emulator sees really did arrive over TLS. The TLS handshake is deferred
    from ``accept()`` (werkzeug's accepting thread) to the request's own thread, so a client
    that connects and stalls cannot block every other client.

a. S3 bucket-policy conditions on ``aws:SecureTransport``
    moto enforces bucket-policy statements whose principal is ``"*"`` on object operations
    (``S3Response._key_response`` -> ``FakeBucket.get_permission``) but ignores their
    conditions: it has no condition values to compare, and a condition without values passes.
    The usual TLS-only statement (Deny, Principal ``*``, ``s3:*``, Condition
    ``Bool aws:SecureTransport = "false"``) therefore denies every object request, over HTTP
    and HTTPS alike, and locks Terraform out of its own state bucket. Here
    ``FakeBucket.get_permission`` evaluates ``Bool``/``BoolIfExists`` conditions on
    ``aws:SecureTransport`` against the scheme of the request being served (recorded by a
    WSGI middleware in a context variable): a statement whose condition does not match the
    request does not apply; one that matches applies like an unconditioned statement (any
    other conditions it has are left to moto). Statements without that key keep moto's
    handling, and so does everything when no request scheme is known (moto used in-process).

b. RDS ``DescribeDBParameters``
    moto stores what ``ModifyDBParameterGroup`` sets and returns it, but without ``Source``,
    and ignores the ``Source`` filter. The Terraform AWS provider's ``aws_db_parameter_group``
    skips returned parameters that have no ``Source`` when the configuration lists
    parameters, so a group that sets ``rds.force_ssl`` shows a diff on every plan. Here the
    user-set parameters are returned with ``Source: user`` (and ``ParameterName``,
    ``ParameterValue``, ``ApplyMethod`` as set), and the ``Source`` filter is honoured (moto
    keeps no engine defaults, so ``system``/``engine-default`` return none).

c. RDS ``ResetDBParameterGroup``
    Not implemented by moto; the provider calls it when a parameter is removed from the
    configuration. Here it forgets the named (or all) user-set parameters.

d. EC2 descriptions of security group rules that reference another group
    moto keeps a rule given in ``AuthorizeSecurityGroupIngress``/``Egress`` as a
    ``SecurityGroupRule`` with the CIDR range in ``ip_range`` and the ``UserIdGroupPair`` in
    ``source_group``, each with its own ``Description``; but ``SecurityGroupRule.description``,
    which ``DescribeSecurityGroupRules`` (and the rules returned by the authorize calls)
    serialise, reads only ``ip_range``. The description of a rule that references a group is
    therefore dropped there (``DescribeSecurityGroups`` still shows it in
    ``UserIdGroupPairs``), and an ``aws_vpc_security_group_ingress_rule``/``egress_rule`` with
    ``referenced_security_group_id`` and ``description`` shows an update on every plan until
    ``ModifySecurityGroupRules`` has stored the description in ``ip_range``. Here the property
    falls back to ``source_group``'s description when ``ip_range`` has none, so a description
    set by ``ModifySecurityGroupRules`` still wins.

e. The master user secret of RDS instances with ``manage_master_user_password``
    moto writes the same fixed credentials (``admin`` / a constant password) into every
    RDS-managed secret. In AWS the secret holds the instance's master username and a password
    generated for it. Here the secret holds the instance's ``MasterUsername`` and a random
    password, so what clients read from Secrets Manager matches what RDS reports (and a
    password leaking into a log can be searched for).

f. SDK retries of requests the emulator already carried out
    Under load, an SDK sometimes does not receive the answer to a request the emulator has
    completed and retries it; moto then runs it again (a create answers "already exists", a
    DynamoDB state lock finds itself). ``RetryReplayer`` answers a retry (same
    ``amz-sdk-invocation-id``, ``attempt`` > 1) of a state-changing request that succeeded
    with the stored first answer, as an idempotent AWS API would.

g. Where Lambda code can be downloaded
    ``GetFunction`` answers ``Code.Location`` with a presigned S3 URL in AWS; moto answers an
    ``awslambda-<region>-tasks`` address that does not exist. Here ``Code.Location`` points at
    the emulator itself, ``/_stackrun/lambda-code/<account>/<region>/<function>/<version>``,
    and ``LambdaCodeServer`` serves the bytes moto stored for that version, so a client
    downloads the code of a function (or of the version an alias points to) exactly as it
    would from AWS. The local API server (``stackrun.local.api``) runs functions from it.

h, i, j, k. Cognito user pools (``cognito.py``, documented there in full)
    h: moto signs every pool's tokens with one key shipped in moto (kid ``dummy``) and serves
    it as every pool's JWKS; here each pool has its own RSA keys (ID and access token), its
    tokens are signed with them and ``/<pool>/.well-known/jwks.json`` serves them. i: the
    OpenID discovery document answers like Cognito (issuer, ``jwks_uri``, the domain's
    endpoints; 404 for an unknown pool). j: ``CognitoEndpoints`` answers
    ``POST https://<domain>.auth.<region>.amazoncognito.com/oauth2/token`` (client credentials
    grant) by Host header, before moto's host dispatch, which would hand it to S3; and
    ``CreateUserPoolDomain`` refuses a domain another pool of the region holds. k:
    ``UpdateResourceServer`` and ``DeleteResourceServer``, which moto lacks (the destroy of a
    resource server never finished).

l. Lambda ``Invoke``
    moto runs a function in a Docker container, and these machines have no Docker daemon: an
    Invoke failed. Here ``LambdaFunction._invoke_lambda`` runs the invoked version in the local
    runtime (``invoke.py``; an alias resolves to its version by its routing weights, as in
    Lambda, where moto would take the alias's primary version, and would ignore the
    ``Qualifier`` query parameter altogether, running ``$LATEST``: the Invoke handler records
    the qualifier the client asked for), and publishes the invocation's metrics to
    CloudWatch as Lambda does (``api/metrics.py``): the
    deployed zip, the version's environment with the environment's local PostgreSQL behind the
    emulated RDS address, the execution role's credentials, the function's log group. Clients
    invoke exactly as in AWS (stackrun's deploy invokes the migrations function this way on
    both targets). The extracted code and the database's address are the emulator's own (its
    state's ``lambda/`` and ``rds/``), whichever clone invokes; only where the local runtimes
    are it reads from the registry stackrun writes beside its CA (``targets/<account>.json``).

m. CloudWatch metric statistics (``cloudwatch.py``, documented there)
    GetMetricStatistics matches the data by its exact dimension set, as CloudWatch does (moto
    counts every datum whose dimensions include the query's: Lambda's [FunctionName] would
    count each invocation three times), and GetMetricData's dimension matching no longer depends
    on the order the dimensions are listed in.

n. The CA certificate of a new RDS instance (``moto_patches.py``)
    moto gives an instance created without ``CACertificateIdentifier`` the CA ``rds-ca-default``,
    which does not exist. RDS gives it the account's default CA for new instances
    (``DefaultCertificateForNewLaunches`` of ``DescribeCertificates``: the account's
    ``ModifyCertificates`` override, else the Region's default, ``rds-ca-rsa2048-g1``). The AWS
    provider (hashicorp/aws 5.x) never sends ``CACertificateIdentifier`` with
    ``CreateDBInstance``: it compares ``ca_cert_identifier`` with the CA in the create's answer
    and, when they differ, calls ``ModifyDBInstance`` and waits for the instance a second time
    (80 s at least). Against moto every instance that pins a CA paid that second wait, which an
    AWS account without an override does not for a pin equal to the default. Here a
    ``CreateDBInstance`` without a CA gets ``rds-ca-rsa2048-g1``, as in such an account; a CA
    given in the request is kept, as moto already does.

o. A signal for the local API's caches (``middleware.ConfigGeneration``)
    Not an AWS gap: AWS has no such endpoint. The local API server caches what it reads from
    Lambda and API Gateway (routes, integrations, stages, authorizers, aliases, function
    configurations) and must drop it when they change. Every write to those two services bumps
    a generation, written to ``tls/config-generation`` beside the CA and answered on
    ``GET /_stackrun/config-generation``; the local API compares it with each request.

p. The resource id of an RDS instance (``moto_patches.py``)
    moto gives every DB instance the same ``DbiResourceId`` (``db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U``).
    RDS gives each instance its own, and a new one when an instance is deleted and created
    again under the same identifier. The local data plane keys the PostgreSQL server behind an
    instance by it (``postgres/behind_rds.py``), so a recreated instance starts empty, as in
    AWS. Here each new instance gets ``db-`` and 26 random upper-case letters and digits.

Readiness: moto's own ``GET /moto-api/config`` (small JSON, no backend data) serves as the
health probe; no extra route is added.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from stackrun.paths import config_generation_file

from .cognito_endpoints import CognitoEndpoints
from .common import is_loopback
from .middleware import (
    ConfigGeneration,
    LambdaCodeServer,
    RetryReplayer,
    SchemeRecorder,
    WSGIApp,
)
from .moto_patches import install_invoke, install_patches


class _DeferredHandshakeContext(ssl.SSLContext):
    """An SSL context whose sockets shake hands on first read, in the request's thread.

    werkzeug wraps the listening socket; with Python's default the handshake then runs inside
    ``accept()`` in the single accepting thread, where one stalled client blocks the server.
    """

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def make_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = _DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def build_app(generation_file: Path | None = None) -> WSGIApp:
    """moto's server application (as ``moto.server.main`` builds it), patched and wrapped.

    `generation_file`: where the configuration generation is written (patch o).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    install_patches()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server.main: errors in the log
    served = SchemeRecorder(CognitoEndpoints(LambdaCodeServer(app)))
    return RetryReplayer(ConfigGeneration(served, generation_file))


def _terminate(signum: int, frame: Any) -> None:
    sys.exit(0)


LINGER_SECONDS = 2.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        # It accepts any credentials: never reachable from the network.
        parser.error(
            f"--host must be a loopback address (127.0.0.0/8, ::1, localhost): {args.host}"
        )

    # moto builds some URLs (SQS queue URLs, Lambda callbacks, ...) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(args.port)
    # the CA beside the server certificate, and the registry of local environments beside it
    install_invoke(Path(args.cert).resolve().parent, args.host, args.port)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)

    import werkzeug.serving
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    # The output goes to a log file, not a terminal: no ANSI colours in the request lines.
    werkzeug.serving._log_add_style = False

    class LingeringRequestHandler(MotoRequestHandler):
        """Close each connection gracefully: stop sending, drain what the client still sends.

        werkzeug answers every request with `Connection: close`. Closing a TCP socket that
        still has unread input makes the kernel send a reset, which can reach the client before
        it has read the response; the AWS SDKs then retry a request the emulator has already
        carried out (a create answered "already exists", a lock put that finds its own lock).
        Half-closing first and reading until the client closes avoids that reset.
        """

        def finish(self) -> None:
            super().finish()
            connection = self.connection
            try:
                connection.shutdown(socket.SHUT_WR)
                connection.settimeout(LINGER_SECONDS)
                while connection.recv(65536):
                    pass
            except (OSError, ValueError):
                pass

    werkzeug.serving.run_simple(
        args.host,
        args.port,
        build_app(config_generation_file(Path(args.cert).resolve().parent)),
        threaded=True,
        ssl_context=make_ssl_context(args.cert, args.key),
        request_handler=LingeringRequestHandler,
    )


if __name__ == "__main__":
    main()
