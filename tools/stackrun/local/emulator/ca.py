"""A private certificate authority for the local AWS emulator.

The emulator speaks HTTPS only (see ``server.py`` for why). Clients trust it through a CA
certificate generated here, once per state directory, and never through the system trust
store: Terraform's AWS provider and S3 backend take it as ``custom_ca_bundle``, boto3 as
``verify=``.

Layout of ``directory``::

    ca.pem           CA certificate (the CA bundle clients use)
    ca-key.pem       CA private key (0600)
    server.pem       server certificate for localhost, 127.0.0.1 and ::1, signed by the CA
    server-key.pem   server private key (0600)

Files are reused while they are consistent and not close to expiry; a server certificate
that is no longer usable is re-issued from the existing CA, so a CA path already handed to
clients keeps working.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stackrun.filelock import file_lock

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)
# Re-issue before a certificate gets close to expiry, so a long-running emulator
# started today does not break in the middle of next month's deploy.
RENEW_BEFORE = dt.timedelta(days=30)
# The key usages neither certificate has (both sign their handshakes; the CA also signs
# certificates and CRLs).
_KEY_USAGES_OFF = (
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "encipher_only",
    "decipher_only",
)
# Clock skew allowance for freshly issued certificates.
BACKDATE = dt.timedelta(minutes=5)

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

_KEY_MODE = 0o600


@dataclass(frozen=True)
class CertificatePaths:
    """Where the CA and the server certificate of one state directory live."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    @property
    def ca_key(self) -> Path:
        return self.ca_cert.with_name("ca-key.pem")


def certificate_paths(directory: Path) -> CertificatePaths:
    """Where the files of ``directory`` are (whether or not they exist yet)."""
    return CertificatePaths(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
    )


def ensure_certificates(directory: Path, extra_hosts: Iterable[str] = ()) -> CertificatePaths:
    """Return the CA and server certificate in ``directory``, generating what is missing.

    ``extra_hosts`` are DNS names or IP addresses the server certificate must cover on top of
    localhost, 127.0.0.1 and ::1 (for example another loopback address the emulator binds).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = certificate_paths(directory)
    hosts = _unique([*DEFAULT_HOSTS, *extra_hosts])
    with file_lock(directory / ".lock"):
        now = _now()
        ca = _load_valid_ca(paths, now)
        if ca is None:
            ca = _issue_ca(paths, now)
        ca_cert, ca_key = ca
        if not _server_is_valid(paths, ca_cert, hosts, now):
            _issue_server(paths, ca_cert, ca_key, hosts, now)
    return paths


# --- validation -------------------------------------------------------------------------------


def _load_valid_ca(
    paths: CertificatePaths, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if not _same_public_key(cert, key) or not _fresh(cert, now):
        return None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    if not constraints.ca:
        return None
    return cert, key


def _server_is_valid(
    paths: CertificatePaths, ca_cert: x509.Certificate, hosts: list[str], now: dt.datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return False
    if not _same_public_key(cert, key) or not _fresh(cert, now):
        return False
    names = set(san.get_values_for_type(x509.DNSName))
    addresses = set(san.get_values_for_type(x509.IPAddress))
    for host in hosts:
        address = _ip(host)
        if (address not in addresses) if address is not None else (host not in names):
            return False
    return True


def _same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(encoding, fmt) == key.public_key().public_bytes(
        encoding, fmt
    )


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


# --- issuing ----------------------------------------------------------------------------------


def _issue_ca(
    paths: CertificatePaths, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random suffix keeps CAs of different state directories (or generations) apart in
    # any trust store or log that identifies a CA by its name.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stackrun"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"stackrun local emulator CA {secrets.token_hex(4)}"
            ),
        ]
    )
    public_key = key.public_key()
    cert = (
        _builder(name, name, public_key, now, now + CA_VALIDITY, is_ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    _save(paths.ca_key, paths.ca_cert, key, cert)
    return cert, key


def _issue_server(
    paths: CertificatePaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: list[str],
    now: dt.datetime,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = key.public_key()
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        address = _ip(host)
        alt_names.append(x509.IPAddress(address) if address is not None else x509.DNSName(host))
    not_after = min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        _builder(subject, ca_cert.subject, public_key, now, not_after, is_ca=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _save(paths.server_key, paths.server_cert, key, cert)


# --- helpers ----------------------------------------------------------------------------------


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    not_after: dt.datetime,
    *,
    is_ca: bool,
) -> x509.CertificateBuilder:
    """What the CA and the server certificate share: names, key, a random serial, validity
    from a little before `now`, basic constraints and key usage (a CA signs certificates and
    CRLs, the server only signs its handshakes)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                **dict.fromkeys(_KEY_USAGES_OFF, False),
            ),
            critical=True,
        )
    )


def _save(
    key_path: Path, cert_path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> None:
    """The private key (owner only) and the certificate (readable by all), as PEM."""
    _write(key_path, _private_pem(key), _KEY_MODE)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically, with ``mode`` from the first byte on (keys are never world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # the umask may have narrowed or the file may have existed
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unique(hosts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(host.strip().lower() for host in hosts if host.strip()))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
