"""What no local registry shows: Docker Hub's 401, 429, 5xx, refused connections, timeouts, TLS, bad auth.

Small HTTP servers on 127.0.0.1 answer exactly as REFERENCE.md documents registries do.
"""

import datetime
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug import Response

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import ANONYMOUS
from exporter.sources.registry.settings import RegistrySettings, from_options
from tests.support import free_port

DIGEST = "sha256:" + "b" * 64


def checker(server, **options):
    host = f"127.0.0.1:{server.port}"
    return Checker(from_options(insecure=[host], **options)), host


def status_of(check, image):
    [result] = check.check_many([(image, ANONYMOUS)]).values()
    return result


def test_429_with_retry_after_pauses_the_host(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_response(
        Response(status=429, headers={"Retry-After": "120"}))
    check, host = checker(httpserver)
    result = status_of(check, f"{host}/a:1")
    assert result.status == Status.RATE_LIMITED
    sent = check.stats.total()
    second = status_of(check, f"{host}/b:1")  # another image of the same host: no request while paused
    assert second.status == Status.RATE_LIMITED and "next probe in 1" in second.detail
    assert check.stats.total() == sent


def test_absurd_retry_after_is_capped(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_response(
        Response(status=429, headers={"Retry-After": str(485009 * 3600)}))
    check, host = checker(httpserver)
    status_of(check, f"{host}/a:1")
    paused = check.hosts.pauses.paused("127.0.0.1:%d" % httpserver.port)
    assert paused is not None and paused.paused_until - time.monotonic() <= 3600 + 1


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_unreachable(httpserver, code):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_data("", status=code)
    check, host = checker(httpserver)
    assert status_of(check, f"{host}/a:1").status == Status.UNREACHABLE


def test_refused_connection_is_unreachable_and_the_host_is_probed_not_hammered():
    port = free_port()  # nothing listens here
    check = Checker(from_options(insecure=[f"127.0.0.1:{port}"]))
    images = [(f"127.0.0.1:{port}/app{i}:1", ANONYMOUS) for i in range(20)]
    results = check.check_many(images)
    assert {r.status for r in results.values()} == {Status.UNREACHABLE}
    assert check.stats.total() == 1  # one probe; the others were answered from the pause
    assert any("cannot connect" in r.detail for r in results.values())


def test_timeout_is_unreachable():
    stop = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            stop.wait(5)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        check = Checker(RegistrySettings(timeout=0.5, hosts=from_options(insecure=[host]).hosts))
        result = status_of(check, f"{host}/a:1")
        assert result.status == Status.UNREACHABLE and "timed out" in result.detail
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_head_refused_falls_back_to_get_counted_apart(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_data("", status=405)
    httpserver.expect_request("/v2/a/manifests/1", method="GET").respond_with_data(
        "{}", headers={"Docker-Content-Digest": DIGEST})
    check, host = checker(httpserver)
    result = status_of(check, f"{host}/a:1")
    assert (result.status, result.digest) == (Status.AVAILABLE, DIGEST)
    assert check.stats.total("GET") == 2  # the ping and the fallback


def test_malformed_www_authenticate_is_an_error_with_detail(httpserver):
    httpserver.expect_request("/v2/").respond_with_response(
        Response(status=401, headers={"WWW-Authenticate": 'Bearer service="x"'}))
    check, host = checker(httpserver)
    result = status_of(check, f"{host}/a:1")
    assert result.status == Status.ERROR and "realm" in result.detail


@pytest.mark.parametrize(
    "token_response, status",
    [
        (Response("oops", status=500), Status.UNREACHABLE),
        (Response("not json", status=200), Status.ERROR),
        (Response('{"nothing": 1}', status=200, content_type="application/json"), Status.ERROR),
    ],
)
def test_broken_token_endpoints(httpserver, token_response, status):
    realm = httpserver.url_for("/token")
    httpserver.expect_request("/v2/").respond_with_response(
        Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}))
    httpserver.expect_request("/token").respond_with_response(token_response)
    check, host = checker(httpserver)
    assert status_of(check, f"{host}/a:1").status == status


def test_forbidden_is_forbidden(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_data("", status=403)
    check, host = checker(httpserver)
    assert status_of(check, f"{host}/a:1").status == Status.FORBIDDEN


class RouteTo(httpx.AsyncBaseTransport):
    """Sends every request to a local test server, keeping the Host the client meant (a fake DNS)."""

    def __init__(self, port):
        self._inner = httpx.AsyncHTTPTransport()
        self._port = port

    async def handle_async_request(self, request):
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port)
        return await self._inner.handle_async_request(request)


def test_docker_hub_401_for_a_missing_repository_is_absent(httpserver):
    """Docker Hub answers 401 (not 404) for a repository that does not exist, with a valid anonymous token."""
    realm = "https://auth.docker.io/token"
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry.docker.io"'}
    httpserver.expect_request("/v2/").respond_with_response(Response(status=401, headers=challenge))
    httpserver.expect_request("/token").respond_with_json({"token": "anon", "expires_in": 300})
    httpserver.expect_request("/v2/library/nginx/manifests/1.27", method="HEAD").respond_with_response(
        Response(status=200, headers={"Docker-Content-Digest": DIGEST}))
    httpserver.expect_request("/v2/nobody/nothing/manifests/1", method="HEAD").respond_with_response(
        Response(status=401, headers=challenge))
    check = Checker(transport=RouteTo(httpserver.port))
    assert status_of(check, "nginx:1.27").status == Status.AVAILABLE
    result = status_of(check, "nobody/nothing:1")
    assert result.status == Status.ABSENT and "Docker Hub" in result.detail


def test_invalid_reference_sends_nothing():
    check = Checker()
    result = status_of(check, "Registry.Example.com/UPPER:1:2")
    assert result.status == Status.INVALID_REFERENCE and check.stats.total() == 0


def test_mirror_answers_for_its_source(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/dockerhub/library/nginx/manifests/1.27", method="HEAD").respond_with_response(
        Response(status=200, headers={"Docker-Content-Digest": DIGEST}))
    httpserver.expect_request("/v2/dockerhub/library/gone/manifests/1", method="HEAD").respond_with_data("", status=404)
    mirror = f"127.0.0.1:{httpserver.port}"
    unreachable_origin = f"127.0.0.1:{free_port()}"
    settings = from_options(insecure=[mirror, unreachable_origin],
                            mirrors=[f"{unreachable_origin}={mirror}/dockerhub"])
    # the origin stands for docker.io behind an air gap: never reachable
    check = Checker(settings)
    ok = status_of(check, f"{unreachable_origin}/library/nginx:1.27")
    assert (ok.status, ok.endpoint) == (Status.AVAILABLE, mirror)
    gone = status_of(check, f"{unreachable_origin}/library/gone:1")
    assert (gone.status, gone.endpoint) == (Status.ABSENT, mirror)  # the mirror's answer, not the air gap's


# ---- TLS ----

def make_cert(tmp_path, common_name, san_ip=True):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if san_ip else [x509.DNSName("other.example")]
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{common_name}.crt", tmp_path / f"{common_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TLSRegistry:
    def __init__(self, cert, key):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("Docker-Content-Digest", DIGEST)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_tls_unknown_ca_then_trusted_ca_then_skip_verify(tmp_path):
    cert, key = make_cert(tmp_path, "registry")
    server = TLSRegistry(cert, key)
    try:
        unknown = status_of(Checker(), f"{server.host}/a:1")
        assert unknown.status == Status.TLS_ERROR and "certificate" in unknown.detail.lower()
        trusted = status_of(Checker(from_options(ca_file=str(cert))), f"{server.host}/a:1")
        assert trusted.status == Status.AVAILABLE
        skipped = status_of(Checker(from_options(skip_verify=[server.host])), f"{server.host}/a:1")
        assert skipped.status == Status.AVAILABLE
    finally:
        server.stop()


def test_tls_wrong_host_is_a_tls_error(tmp_path):
    cert, key = make_cert(tmp_path, "other", san_ip=False)
    server = TLSRegistry(cert, key)
    try:
        result = status_of(Checker(from_options(ca_file=str(cert))), f"{server.host}/a:1")
        assert result.status == Status.TLS_ERROR
    finally:
        server.stop()


def test_429_without_retry_after_still_pauses_the_host(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_data("", status=429)
    check, host = checker(httpserver)
    assert status_of(check, f"{host}/a:1").status == Status.RATE_LIMITED
    sent = check.stats.total()
    assert status_of(check, f"{host}/b:1").status == Status.RATE_LIMITED
    assert check.stats.total() == sent


class FailingDNS(httpx.AsyncBaseTransport):
    """Raises what httpx raises when a host name does not resolve (no lookup leaves the machine)."""

    async def handle_async_request(self, request):
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)


def test_dns_failure_is_unreachable_with_a_clear_detail():
    check = Checker(transport=FailingDNS())
    result = status_of(check, "registry.does-not-exist.example/app:1")
    assert result.status == Status.UNREACHABLE and "DNS lookup failed" in result.detail


def test_503_is_asked_again_within_the_deadline_and_answered_from_the_pause_without_one(httpserver):
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_oneshot_request("/v2/a/manifests/1", method="HEAD").respond_with_response(
        Response(status=503, headers={"Retry-After": "1"}))
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_response(
        Response(status=200, headers={"Docker-Content-Digest": DIGEST}))
    check, host = checker(httpserver)
    [result] = check.check_many([(f"{host}/a:1", ANONYMOUS)], deadline=time.time() + 30).values()
    assert (result.status, result.digest) == (Status.AVAILABLE, DIGEST)
    assert check.stats.total("HEAD") == 2

    httpserver.expect_oneshot_request("/v2/b/manifests/1", method="HEAD").respond_with_response(
        Response(status=503, headers={"Retry-After": "30"}))
    fresh, _ = checker(httpserver)
    assert status_of(fresh, f"{host}/b:1").status == Status.UNREACHABLE  # no deadline: one try
    later = status_of(fresh, f"{host}/c:1")  # paused for the Retry-After: answered without a request
    assert later.status == Status.UNREACHABLE and "host paused" in later.detail
