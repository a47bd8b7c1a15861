"""Plain HTTPS calls to AWS endpoints that are not SDK APIs (OAuth2 token endpoints, JWKS).

Against the local target every such call goes to the emulator, with the AWS host name kept in
the ``Host`` header, the way ``AWS_ENDPOINT_URL`` sends SDK calls there: the emulator serves
``https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`` and
``https://<domain>.auth.<region>.amazoncognito.com/oauth2/token`` by their host names. URLs of
other hosts (an external OIDC issuer) are fetched as they are.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Hosts the emulator answers for (by Host header) when a run targets it.
EMULATED_HOST_SUFFIXES = (".amazonaws.com", ".amazoncognito.com")
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def is_emulated_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(EMULATED_HOST_SUFFIXES)


def request(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    endpoint: str | None = None,
    ca_bundle: Path | str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> HttpAnswer:
    """One HTTPS request; any HTTP status is an answer, only network errors raise (OSError).

    With ``endpoint`` (the emulator), AWS hosts are reached there with their ``Host`` header,
    and ``ca_bundle`` is the emulator's CA.
    """
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValueError(f"only https URLs are fetched, not {url!r}")
    all_headers = dict(headers or {})
    target = url
    if endpoint and is_emulated_host(url):
        all_headers["Host"] = parts.netloc
        base = urlsplit(endpoint)
        target = parts._replace(scheme=base.scheme, netloc=base.netloc).geturl()
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    outgoing = urllib.request.Request(target, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout, context=context) as response:
            return HttpAnswer(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        body = error.read() if error.fp is not None else b""
        return HttpAnswer(error.code, {k.lower(): v for k, v in error.headers.items()}, body)
    except urllib.error.URLError as error:
        raise OSError(f"{method} {url}: {error.reason}") from None
