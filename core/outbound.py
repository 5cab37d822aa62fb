"""Where the server may reach out to (model endpoints) and which server paths web users may name.

Endpoint URLs (jurors, generation jobs, evaluation endpoints) must name a host that
``AEGIS_ENDPOINT_ALLOWED_HOSTS`` allows: host names, ``.domain`` suffixes or networks (CIDR). A host
name that is not listed must resolve only to addresses in a listed network. Link-local and cloud
metadata addresses are refused always, whatever the list says. The same check runs again for every
connection the endpoint client opens (``endpoint_client``), which connects to the address it
vetted: a name that resolves elsewhere later (DNS rebinding) is refused then. Server paths typed into the web app
(LoRA base models, topic-following files, prediction files) are for staff only and must lie inside
``AEGIS_SERVER_PATH_ROOTS``; the command line is not limited (it already has the server's shell).
"""

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import PermissionDenied

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Link-local (AWS, GCP, Azure and OpenStack metadata live at 169.254.169.254), AWS's IPv6 metadata,
# Alibaba's metadata and the IPv4-mapped forms: never reachable, even when allow-listed.
ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32", "0.0.0.0/8", "::/128")
)
REFUSED_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"})


class OutboundRefused(ValueError):
    """An endpoint URL the server will not call; the message says why and which setting decides."""


def _allowed_entries() -> tuple[list[IPNetwork], list[str]]:
    networks, names = [], []
    for entry in settings.AEGIS_ENDPOINT_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.append(entry)
    return networks, names


def _refused_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in ALWAYS_REFUSED if network.version == address.version)


def _addresses(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def _name_listed(host: str, names: list[str]) -> bool:
    return any(host == name or (name.startswith(".") and host.endswith(name)) for name in names)


def _vetted_addresses(host: str, label: str) -> list[IPAddress]:
    """The addresses ``host`` resolves to now, if the server may call them; raises OutboundRefused
    (its message starting with ``label``) otherwise. A listed host name may resolve to nothing."""
    if host in REFUSED_NAMES:
        raise OutboundRefused(f"{label}: cloud metadata hosts are never called")
    networks, names = _allowed_entries()
    addresses = list(dict.fromkeys(_addresses(host)))
    refused = [str(a) for a in addresses if _refused_address(a)]
    if refused:
        raise OutboundRefused(
            f"{label}: {host} is a link-local or metadata address ({', '.join(refused)}); never called"
        )
    if _name_listed(host, names):
        return addresses
    if not addresses:
        raise OutboundRefused(f"{label}: cannot resolve {host} to check it against AEGIS_ENDPOINT_ALLOWED_HOSTS")
    outside = [str(a) for a in addresses if not any(a in n for n in networks if n.version == a.version)]
    if outside:
        raise OutboundRefused(
            f"{label}: {host} ({', '.join(outside)}) is not in AEGIS_ENDPOINT_ALLOWED_HOSTS "
            "(loopback and private networks by default; add the host to call it)"
        )
    return addresses


def check_endpoint_url(url: str) -> str:
    """The URL if the server may call it; raises OutboundRefused otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"{url!r}: expected an http(s) URL with a host, e.g. http://127.0.0.1:8000/v1")
    if parts.username or parts.password:
        raise OutboundRefused(f"{url!r}: credentials in the URL are not allowed (use the API key setting)")
    _vetted_addresses(parts.hostname.lower().rstrip("."), repr(url))
    return url


class VettedNetworkBackend(httpcore.SyncBackend):
    """Opens connections only to addresses the allow-list accepts, resolved here for each
    connection and connected to by address: a host name that resolved to an allowed address when
    its URL was checked and to another one now (DNS rebinding) is refused. TLS still checks the
    certificate against the host name (httpcore passes the URL's host to ``start_tls``)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        name = host.lower().rstrip(".")
        addresses = _vetted_addresses(name, f"{name}:{port}")
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {name}")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error
        raise failure


class _VettedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool that opens its connections through
    ``VettedNetworkBackend`` (httpx takes no network backend, so the pool it builds is replaced)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=VettedNetworkBackend(),
        )


def endpoint_client(base_url: str, *, headers: dict[str, str], timeout: float, connections: int) -> httpx.Client:
    """An HTTP client for a model endpoint: it connects only to vetted addresses, follows no
    redirect and uses no proxy from the environment. Raises OutboundRefused for a URL off the list;
    its requests raise OutboundRefused when the host resolves off the list at connect time."""
    check_endpoint_url(base_url)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        transport=_VettedTransport(limits),
    )


def check_server_path(user, value: str, action: str) -> Path:
    """A server path named by a web user: staff only, inside AEGIS_SERVER_PATH_ROOTS.

    ``user`` None is the command line, which may name any path. Nothing here reveals whether a
    path exists: the caller checks existence only after this returns.
    """
    path = Path(value)
    if user is None:
        return path
    if not user.is_staff:
        raise PermissionDenied(f"only staff may {action} (a path on the server)")
    resolved = path.resolve()
    roots = [Path(root).resolve() for root in settings.AEGIS_SERVER_PATH_ROOTS]
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise PermissionDenied(
            f"cannot {action}: {value!r} is outside the folders the server may read (AEGIS_SERVER_PATH_ROOTS)"
        )
    return resolved
