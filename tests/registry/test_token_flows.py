"""Token flows that keep secrets out of URLs and follow a registry whose token realm moves.

A registry and its token endpoint played by pytest-httpserver on 127.0.0.1, answering as the distribution
token spec says.
"""

import dataclasses
import logging
from urllib.parse import parse_qs

from werkzeug import Response

from exporter.common.logs import configure
from exporter.model.records import Status
from exporter.sources.registry.auth import TokenCache
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import ANONYMOUS, Credential, Keyring
from exporter.sources.registry.settings import from_options

DIGEST = "sha256:" + "c" * 64
CANARY = "S3cr3t-identity-canary"


def bearer(httpserver, realm_path, service="reg"):
    realm = httpserver.url_for(realm_path)
    return Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="{service}"'})


def manifest_for(token):
    def handler(request):
        if request.headers.get("Authorization") == f"Bearer {token}":
            return Response(status=200, headers={"Docker-Content-Digest": DIGEST,
                                                 "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        return None
    return handler


def test_refresh_token_goes_in_a_post_body_never_a_url(httpserver, caplog):
    configure("debug")
    caplog.set_level(logging.DEBUG)
    forms = []

    def token(request):
        if request.method != "POST":
            return Response(status=400)
        forms.append(parse_qs(request.get_data(as_text=True)))
        return Response('{"access_token": "acc", "expires_in": 300}', content_type="application/json")

    httpserver.expect_request("/v2/").respond_with_response(bearer(httpserver, "/token"))
    httpserver.expect_request("/token").respond_with_handler(token)
    httpserver.expect_request("/v2/app/manifests/1", method="HEAD").respond_with_handler(
        lambda request: manifest_for("acc")(request) or bearer(httpserver, "/token"))
    host = f"127.0.0.1:{httpserver.port}"
    keyring = Keyring((Credential(host, identity_token=CANARY, source="docker config"),))
    [result] = Checker(from_options(insecure=[host])).check_many([(f"{host}/app:1", keyring)]).values()
    assert result.status == Status.AVAILABLE
    assert forms == [{"grant_type": ["refresh_token"], "refresh_token": [CANARY], "client_id": ["kube-image-exporter"],
                      "scope": ["repository:app:pull"], "service": ["reg"]}]
    assert all(CANARY not in request.url for request, _ in httpserver.log)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert "HTTP Request: POST" in ours and CANARY not in ours


def test_a_moved_token_realm_is_followed(httpserver):
    realm = {"path": "/token-a", "token": "a"}

    def token(request):
        if request.path != realm["path"]:
            return Response(status=401)
        return Response(f'{{"token": "{realm["token"]}"}}', content_type="application/json")

    def manifest(request):
        return manifest_for(realm["token"])(request) or bearer(httpserver, realm["path"])

    httpserver.expect_request("/v2/").respond_with_handler(lambda request: bearer(httpserver, realm["path"]))
    httpserver.expect_request("/token-a").respond_with_handler(token)
    httpserver.expect_request("/token-b").respond_with_handler(token)
    httpserver.expect_request("/v2/app/manifests/1", method="HEAD").respond_with_handler(manifest)
    host = f"127.0.0.1:{httpserver.port}"
    settings = dataclasses.replace(from_options(insecure=[host]), ttl={status: 0.0 for status in Status})
    check = Checker(settings)
    [first] = check.check_many([(f"{host}/app:1", ANONYMOUS)]).values()
    assert first.status == Status.AVAILABLE

    realm.update(path="/token-b", token="b")  # the registry now sends its clients to another token server
    [second] = check.check_many([(f"{host}/app:1", ANONYMOUS)]).values()
    assert second.status == Status.AVAILABLE
    assert [r.path for r, _ in httpserver.log if r.path.startswith("/token")][-1] == "/token-b"


def test_a_token_expires_10s_early_and_the_cache_stays_bounded():
    now = [1000.0]
    tokens = TokenCache(clock=lambda: now[0], maxsize=3)
    tokens.put(("realm", "svc", "repository:a:pull", "anon"), "ta", 60)
    now[0] += 49
    assert tokens.get(("realm", "svc", "repository:a:pull", "anon")) == "ta"
    now[0] += 2  # 9 s left: could expire on the way
    assert tokens.get(("realm", "svc", "repository:a:pull", "anon")) is None
    for n in range(10):
        tokens.put(("realm", "svc", f"repository:{n}:pull", "anon"), f"t{n}", 300)
    assert len(tokens) == 3
    assert [tokens.get(("realm", "svc", f"repository:{n}:pull", "anon")) for n in (6, 7, 8, 9)] == [None, "t7", "t8", "t9"]
