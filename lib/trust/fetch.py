"""The one server-side fetch: http(s) only, public addresses only, bounded size and time.

Every download the server makes from a URL it did not build itself (result videos, URL-sourced element media,
frame URLs) goes through `open_url`. The host's addresses are checked before connecting, the address actually
connected to is checked again (so DNS rebinding cannot slip a private address in), and every redirect hop is
checked like the first. In sandbox mode the sandbox's own origin is allowed as well (`allow_private`).
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Collection
from typing import IO
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ReadTimeoutError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = (5.0, 30.0)
_CHUNK = 256 * 1024
# True: any private address (tests with their own loopback servers); a collection: these origins
# ("http://127.0.0.1:8787") may be private — the sandbox, or a local gateway the operator configured.
Allowance = bool | Collection[str]


class FetchRefused(Exception):
    """A server-side fetch was refused or failed; the message says why in plain words."""


def is_public_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global unicast address (IPv4-mapped IPv6 judged by its IPv4 part): no loopback, private, link-local,
    multicast, reserved or cloud-metadata range."""
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped if mapped is not None else address
    return address.is_global and not address.is_multicast


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def operator_private_origins(*bases: str) -> tuple[str, ...]:
    """The configured base URLs (KIE_API_BASE, KIE_UPLOAD_BASE) that point at a private or loopback host: the
    operator chose them (a local KIE-compatible gateway), so results from them may be fetched. Nothing else."""
    out = []
    for base in bases:
        host = (urlsplit(base).hostname or "").lower()
        if host == "localhost":
            out.append(base)
            continue
        try:
            if not is_public_ip(ipaddress.ip_address(host)):
                out.append(base)
        except ValueError:  # a host name: judged per download by the fetch rule
            pass
    return tuple(out)


def _origin(scheme: str, host: str, port: int | None) -> str:
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://{host.lower()}:{port}"


def _normalised(origins: Collection[str]) -> frozenset[str]:
    out = set()
    for origin in origins:
        parts = urlsplit(origin)
        if parts.hostname:
            out.add(_origin(parts.scheme.lower(), parts.hostname, parts.port))
    return frozenset(out)


def _may_be_private(allow: Allowance, scheme: str, host: str, port: int | None) -> bool:
    if allow is True:
        return True
    if not allow or isinstance(allow, bool):
        return False
    return _origin(scheme, host, port) in _normalised(allow)


def _refuse_private(host: str, address: str) -> FetchRefused:
    return FetchRefused(f"Refusing to fetch from {host} ({address}): it is a private, loopback or link-local "
                        "address, which outside media never uses.")


def check_public_host(host: str, port: int | None = None) -> None:
    """Raise FetchRefused unless every address `host` resolves to is public."""
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused(f"Cannot find the host {host!r} ({exc}). Check the address and your connection.") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not is_public_ip(address):
            raise _refuse_private(host, str(address))


def check_url(url: str, allow_private: Allowance = False) -> None:
    """Raise FetchRefused unless `url` is http(s) with a host whose addresses pass the public-address rule."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("The link is not a valid web address.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(f"Only http(s) links can be fetched, not {parts.scheme or 'this'!r} links.")
    if not parts.hostname:
        raise FetchRefused("The link has no host name.")
    if parts.username or parts.password:
        raise FetchRefused("Links with a user name or password are not fetched.")
    if not _may_be_private(allow_private, scheme, parts.hostname, port):
        check_public_host(parts.hostname, port)


def _check_peer(sock: socket.socket, scheme: str, host: str, port: int | None, allow: Allowance) -> None:
    try:
        peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
    except (OSError, ValueError):
        sock.close()
        raise FetchRefused(f"Could not tell which address {host} connected to; refused.") from None
    if not is_public_ip(peer) and not _may_be_private(allow, scheme, host, port):
        sock.close()
        raise _refuse_private(host, str(peer))


def guarded_session(allow_private: Allowance = False) -> requests.Session:
    """A requests session whose every connection is checked against the public-address rule after connecting."""

    class _Http(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _check_peer(sock, "http", self.host, self.port, allow_private)
            return sock

    class _Https(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _check_peer(sock, "https", self.host, self.port, allow_private)
            return sock

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Http

    class _SPool(HTTPSConnectionPool):
        ConnectionCls = _Https

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: object, **kwargs: object) -> None:
            super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
            self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _SPool}

    session = requests.Session()
    session.trust_env = False  # no proxy from the environment can route a fetch around the checks
    session.mount("http://", _Adapter(max_retries=0))
    session.mount("https://", _Adapter(max_retries=0))
    return session


def _unwrap(exc: BaseException) -> FetchRefused | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, FetchRefused):
            return exc
        nxt = exc.__context__ or exc.__cause__ or next((a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)), None)
        exc = nxt  # type: ignore[assignment]
    return None


def open_url(url: str, *, allow_private: Allowance = False, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
             session: requests.Session | None = None, max_redirects: int = MAX_REDIRECTS,
             headers: dict[str, str] | None = None) -> requests.Response:
    """GET `url` (streaming) with redirects followed by hand, so every hop is checked like the first.
    The caller closes the response; failures raise FetchRefused with a plain message."""
    own = session is None
    session = session or guarded_session(allow_private)
    try:
        for _ in range(max_redirects + 1):
            check_url(url, allow_private)
            host = urlsplit(url).hostname
            try:
                response = session.get(url, stream=True, timeout=timeout, allow_redirects=False, headers=headers)
            except requests.Timeout:
                raise FetchRefused(f"The download from {host} timed out. Try again later.") from None
            except requests.RequestException as exc:
                refused = _unwrap(exc)
                if refused is not None:
                    raise refused from None
                raise FetchRefused(f"Could not connect to {host}: {exc.__class__.__name__}.") from None
            location = response.headers.get("Location")
            if response.status_code in (301, 302, 303, 307, 308) and location:
                response.close()
                url = urljoin(url, location)
                continue
            if own:
                response._kling_session = session  # type: ignore[attr-defined]  # closed with the response
            return response
        raise FetchRefused(f"The link redirected more than {max_redirects} times.")
    except BaseException:
        if own:
            session.close()
        raise


def stream_capped(response: requests.Response, sink: IO[bytes], max_bytes: int, deadline: float,
                  clock: Callable[[], float] = time.monotonic, what: str = "The file") -> int:
    """Copy the response body into `sink`, stopping past `max_bytes` or `deadline`; returns the byte count."""
    total = 0
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise FetchRefused(f"{what} is larger than the {_size(max_bytes)} limit; download stopped.")
            if clock() > deadline:
                raise FetchRefused("The download took too long and was stopped. Try again later.")
            sink.write(chunk)
    except requests.RequestException as exc:
        # requests reports a read timeout mid-body as a ConnectionError wrapping urllib3's ReadTimeoutError.
        if isinstance(exc, requests.Timeout) or any(isinstance(a, ReadTimeoutError) for a in exc.args):
            raise FetchRefused("The download stalled (no data within the timeout) and was stopped.") from None
        raise FetchRefused(f"The download broke off ({exc.__class__.__name__}). Try again.") from None
    return total


def fetch_bytes(url: str, *, max_bytes: int, allow_private: Allowance = False,
                timeout: tuple[float, float] = DEFAULT_TIMEOUT, max_seconds: float = 60.0) -> tuple[bytes, str]:
    """A small file (an image, a short video) from `url` under the fetch rules: (bytes, content type)."""
    response = open_url(url, allow_private=allow_private, timeout=timeout)
    try:
        if response.status_code != 200:
            raise FetchRefused(f"{urlsplit(url).hostname} answered HTTP {response.status_code}.")
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise FetchRefused(f"The file is {_size(int(length))}, over the {_size(max_bytes)} limit.")
        buffer = io.BytesIO()
        stream_capped(response, buffer, max_bytes, time.monotonic() + max_seconds)
        return buffer.getvalue(), response.headers.get("Content-Type", "")
    finally:
        close(response)


def close(response: requests.Response) -> None:
    """Close a response from open_url (and the session it made)."""
    response.close()
    session = getattr(response, "_kling_session", None)
    if session is not None:
        session.close()
