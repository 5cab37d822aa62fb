"""Endpoint URLs the server may call (allow-list, metadata always refused, no redirects)."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.outbound import OutboundRefused, check_endpoint_url
from guards.backends.base import BackendError
from guards.backends.openai_compatible import OpenAICompatibleBackend


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",
        "http://10.1.2.3/v1",
        "https://192.168.1.20:8443/v1",
        "http://172.20.0.5:8000/v1",
        "http://[::1]:8000/v1",
    ],
)
def test_loopback_and_private_hosts_are_allowed_by_default(url):
    assert check_endpoint_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local or metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local or metadata"),
        ("http://[fe80::1]/", "link-local or metadata"),
        ("http://[fd00:ec2::254]/", "link-local or metadata"),
        ("http://100.100.100.200/", "link-local or metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata hosts are never called"),
        ("http://0.0.0.0:8000/", "link-local or metadata"),
        ("http://8.8.8.8/v1", "not in AEGIS_ENDPOINT_ALLOWED_HOSTS"),
        ("http://no-such-host.invalid/v1", "cannot resolve"),
        ("file:///etc/passwd", "expected an http\\(s\\) URL"),
        ("gopher://127.0.0.1/", "expected an http\\(s\\) URL"),
        ("http://user:secret@127.0.0.1/v1", "credentials in the URL"),
    ],
)
def test_refused_urls_say_why(url, reason):
    with pytest.raises(OutboundRefused, match=reason):
        check_endpoint_url(url)


def test_the_setting_adds_hosts_but_never_metadata(settings):
    settings.AEGIS_ENDPOINT_ALLOWED_HOSTS = ["8.8.8.8/32", ".models.example", "169.254.0.0/16", "fe80::/10"]
    assert check_endpoint_url("http://8.8.8.8/v1")
    assert check_endpoint_url("https://guard.models.example/v1")  # listed names are not resolved here
    with pytest.raises(OutboundRefused, match="not in AEGIS_ENDPOINT_ALLOWED_HOSTS"):
        check_endpoint_url("http://127.0.0.1/v1")
    for url in ("http://169.254.169.254/", "http://[fe80::1]/"):
        with pytest.raises(OutboundRefused, match="link-local or metadata"):
            check_endpoint_url(url)


class _Redirect(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.server.hits += 1
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirect_is_never_followed():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    httpd.hits = 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = httpd.server_address
        backend = OpenAICompatibleBackend(f"http://{host}:{port}/v1", "m", retries=0)
        with pytest.raises(BackendError, match="HTTP 302"):
            backend.complete("hello")
        backend.close()
        assert httpd.hits == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_backend_refuses_a_stored_url_off_the_list():
    with pytest.raises(BackendError, match="link-local or metadata"):
        OpenAICompatibleBackend("http://169.254.169.254/v1", "m")


class _Answer(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        self.server.hosts.append(self.headers["Host"])
        self.rfile.read(int(self.headers["Content-Length"]))
        data = b'{"choices": [{"message": {"role": "assistant", "content": "safe"}}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def answering_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    httpd.hosts = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch):
    """The resolver (an outside boundary) answers ``rebind.test`` with ``answers`` in turn, the last
    one from then on; every host a socket is opened to is kept in ``connected``."""
    real_getaddrinfo, real_create_connection = socket.getaddrinfo, socket.create_connection
    dns = {"answers": [], "asked": 0, "connected": []}

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        answer = dns["answers"][min(dns["asked"], len(dns["answers"]) - 1)]
        dns["asked"] += 1
        return real_getaddrinfo(answer, port, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        dns["connected"].append(address[0])
        host, port = address[:2]
        if host == "rebind.test":  # a client that resolves the name itself, again
            host = getaddrinfo(host, port)[0][4][0]
        if host != "127.0.0.1":  # never really dial out of this machine
            raise ConnectionRefusedError(f"test: no connection to {host}")
        return real_create_connection((host, port), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return dns


@pytest.mark.parametrize(
    ("later", "allowed", "reason"),
    [
        ("169.254.169.254", None, "link-local or metadata address \\(169.254.169.254\\); never called"),
        ("10.9.8.7", ["127.0.0.0/8"], "rebind.test \\(10.9.8.7\\) is not in AEGIS_ENDPOINT_ALLOWED_HOSTS"),
    ],
)
def test_a_name_that_resolves_elsewhere_at_connect_time_is_refused(
    answering_server, rebinding_dns, settings, later, allowed, reason
):
    if allowed is not None:
        settings.AEGIS_ENDPOINT_ALLOWED_HOSTS = allowed
    rebinding_dns["answers"] = ["127.0.0.1", later]
    port = answering_server.server_address[1]
    backend = OpenAICompatibleBackend(f"http://rebind.test:{port}/v1", "m", retries=2, backoff=0.01)
    assert rebinding_dns["asked"] == 1  # vetted once when the URL was checked: 127.0.0.1
    with pytest.raises(BackendError, match=reason):
        backend.complete("hello")
    backend.close()
    assert rebinding_dns["connected"] == [] and answering_server.hosts == []


def test_a_vetted_name_is_connected_to_by_its_address(answering_server, rebinding_dns):
    rebinding_dns["answers"] = ["127.0.0.1"]
    port = answering_server.server_address[1]
    backend = OpenAICompatibleBackend(f"http://rebind.test:{port}/v1", "m", retries=0)
    assert backend.complete("hello").text == "safe"
    backend.close()
    assert rebinding_dns["connected"] == ["127.0.0.1"]  # the vetted address, not the name again
    assert answering_server.hosts == [f"rebind.test:{port}"]  # the request still names the host
