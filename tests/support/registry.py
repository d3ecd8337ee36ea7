"""A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for tests and benchmarks.

Three setups: no auth, Basic (htpasswd with bcrypt), and token auth with a small JWT token server
(RS256, `x5c` header, as distribution expects). Images are pushed over the registry API with httpx:
a config and a layer blob, then manifests (OCI, Docker v2, and an index over them).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import shutil
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support import free_port, stop_process

BINARY = shutil.which("docker-registry")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TokenServer:
    """Issues registry tokens: anonymous pulls allowed for repositories under `public/`, the rest need a user."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-token-issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(self.key, hashes.SHA256())
        )
        self.cert_path = workdir / "token.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.users = users
        self.requests = 0
        self.scopes_seen: list[list[str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests += 1
                query = parse_qs(urlsplit(self.path).query)
                scopes = query.get("scope", [])
                server.scopes_seen.append(scopes)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    user = name
                access = []
                for scope in scopes:
                    kind, repository, actions = scope.split(":", 2)
                    if user or repository.startswith("public/"):
                        access.append({"type": kind, "name": repository, "actions": ["pull"]})
                body = json.dumps({"token": server.issue(user or "", access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def issue(self, subject: str, access: list[dict]) -> str:
        now = int(time.time())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        claims = {"iss": "test-token-issuer", "sub": subject, "aud": "test-registry", "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [base64.b64encode(der).decode()]})

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Registry:
    """docker-registry on 127.0.0.1 with filesystem storage in `workdir`; `auth` is none, basic or token."""

    def __init__(self, workdir: Path, auth: str = "none", users: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.users = users or {"alice": "wonderland"}
        self.token_server: TokenServer | None = None
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"}},
            "http": {"addr": self.host, "secret": "test", "debug": {"addr": ""}},
        }
        if auth == "basic":
            htpasswd = workdir / "htpasswd"
            htpasswd.write_text("".join(
                f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(htpasswd)}}
        elif auth == "token":
            self.token_server = TokenServer(workdir, self.users)
            config["auth"] = {"token": {"realm": self.token_server.realm, "service": "test-registry",
                                        "issuer": "test-token-issuer",
                                        "rootcertbundle": str(self.token_server.cert_path)}}
        del config["http"]["debug"]
        path = workdir / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self._log = open(workdir / "registry.log", "wb")
        self._proc = subprocess.Popen([BINARY, "serve", str(path)], stdout=self._log, stderr=subprocess.STDOUT)
        self.auth = auth
        self._http = httpx.Client(timeout=10)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._http.get(self.url + "/v2/")
                break
            except httpx.HTTPError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "registry.log").read_text()[-2000:])
                time.sleep(0.05)

    # -- pushing --

    def _auth_headers(self, repository: str, actions: str = "pull,push") -> dict[str, str]:
        user, password = next(iter(self.users.items()))
        if self.auth == "basic":
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        if self.auth == "token":
            token = self.token_server.issue(user, [{"type": "repository", "name": repository,
                                                    "actions": actions.split(",") + ["delete"]}])
            return {"Authorization": f"Bearer {token}"}
        return {}

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        headers = self._auth_headers(repository)
        if self._http.head(f"{self.url}/v2/{repository}/blobs/{digest}", headers=headers).status_code == 200:
            return digest
        start = self._http.post(f"{self.url}/v2/{repository}/blobs/uploads/", headers=headers)
        start.raise_for_status()
        location = start.headers["Location"]
        if location.startswith("/"):
            location = self.url + location
        separator = "&" if "?" in location else "?"
        done = self._http.put(f"{location}{separator}digest={digest}", content=data,
                              headers={**headers, "Content-Type": "application/octet-stream"})
        done.raise_for_status()
        return digest

    def push_manifest(self, repository: str, reference: str, manifest: dict, media_type: str,
                      url: str | None = None) -> str:
        """Push a manifest (to `url`, a front of this registry, when given); returns its digest."""
        body = json.dumps(manifest).encode()
        response = self._http.put(f"{url or self.url}/v2/{repository}/manifests/{reference}", content=body,
                                  headers={**self._auth_headers(repository), "Content-Type": media_type})
        if response.status_code >= 300:
            raise RuntimeError(f"push {repository}:{reference}: {response.status_code} {response.text[:300]}")
        return digest_of(body)

    def push_image(self, repository: str, tag: str, media_type: str = OCI_MANIFEST, seed: str = "",
                   platform: str = "linux/amd64") -> str:
        """An image of one small layer, its config naming `platform` (os/arch[/variant]); returns its digest."""
        os, arch, *variant = platform.split("/")
        config = json.dumps({"architecture": arch, "os": os, **({"variant": variant[0]} if variant else {}),
                             "seed": seed or repository + tag}).encode()
        layer = b"layer of " + (seed or repository).encode()
        config_type = ("application/vnd.oci.image.config.v1+json" if media_type == OCI_MANIFEST
                       else "application/vnd.docker.container.image.v1+json")
        layer_type = ("application/vnd.oci.image.layer.v1.tar" if media_type == OCI_MANIFEST
                      else "application/vnd.docker.image.rootfs.diff.tar.gzip")
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": self.push_blob(repository, config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": self.push_blob(repository, layer), "size": len(layer)}],
        }
        return self.push_manifest(repository, tag, manifest, media_type)

    def push_index(self, repository: str, tag: str, platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
                   media_type: str = OCI_INDEX, attestation: bool = False) -> tuple[str, list[str]]:
        """A multi-platform index (an OCI index, or a Docker manifest list with `media_type=DOCKER_LIST`), with a
        buildkit attestation manifest (`unknown/unknown`) when asked; returns (index digest, manifest digests)."""
        child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
        children, manifests = [], []
        for platform in platforms:
            os, arch, *variant = platform.split("/")
            digest = self.push_image(repository, f"{tag}-{platform.replace('/', '-')}", child_type,
                                     seed=f"{repository}{tag}{platform}", platform=platform)
            children.append(digest)
            manifests.append({"mediaType": child_type, "digest": digest, "size": 1,
                              "platform": {"architecture": arch, "os": os, **({"variant": variant[0]} if variant
                                                                              else {})}})
        if attestation:  # as buildkit adds: a manifest of platform unknown/unknown pointing at the first image
            digest = self.push_image(repository, f"{tag}-attestation", child_type, seed=f"{repository}{tag}att",
                                     platform="unknown/unknown")
            children.append(digest)
            manifests.append({"mediaType": child_type, "digest": digest, "size": 1,
                              "platform": {"architecture": "unknown", "os": "unknown"},
                              "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                              "vnd.docker.reference.digest": children[0]}})
        # sizes must be right for the registry to accept the index
        for entry in manifests:
            got = self._http.get(f"{self.url}/v2/{repository}/manifests/{entry['digest']}",
                                 headers={**self._auth_headers(repository), "Accept": child_type})
            entry["size"] = len(got.content)
        index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
        return self.push_manifest(repository, tag, index, media_type), children

    # -- signatures, as cosign and notation attach them --

    def _small_manifest(self, repository: str, layers: list[tuple[str, bytes, dict]], **fields) -> dict:
        """An OCI manifest of the empty config and these (media type, content, annotations) layers."""
        empty = b"{}"
        return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, **fields,
                "config": {"mediaType": EMPTY_CONFIG, "digest": self.push_blob(repository, empty), "size": 2},
                "layers": [{"mediaType": kind, "digest": self.push_blob(repository, data), "size": len(data),
                            "annotations": annotations} for kind, data, annotations in layers]}

    def push_cosign_signature(self, repository: str, digest: str) -> str:
        """cosign's legacy signature: tag `sha256-<hex>.sig`, a simplesigning layer with its signature annotation."""
        payload = json.dumps({"critical": {"image": {"docker-manifest-digest": digest}}}).encode()
        manifest = self._small_manifest(repository, [("application/vnd.dev.cosign.simplesigning.v1+json", payload,
                                                      {"dev.cosignproject.cosign/signature": "MEUCIQ..."})])
        return self.push_manifest(repository, digest.replace(":", "-") + ".sig", manifest, OCI_MANIFEST)

    def push_cosign_attestation(self, repository: str, digest: str, *predicate_types: str) -> str:
        """cosign's legacy attestations: tag `sha256-<hex>.att`, one DSSE envelope a layer, its predicate annotated."""
        layers = [("application/vnd.dsse.envelope.v1+json", json.dumps({"payloadType": "application/vnd.in-toto+json",
                                                                         "predicate": p}).encode(),
                   {"predicateType": p}) for p in predicate_types]
        manifest = self._small_manifest(repository, layers)
        return self.push_manifest(repository, digest.replace(":", "-") + ".att", manifest, OCI_MANIFEST)

    def push_referrer(self, repository: str, subject: str, artifact_type: str, annotations: dict | None = None,
                      url: str | None = None) -> dict:
        """An OCI 1.1 referrer of `subject` (a manifest with `artifactType` and `subject`), pushed by digest (to `url`,
        a front with the referrers API, when given); returns its descriptor as a referrers list shows it."""
        got = self._http.head(f"{self.url}/v2/{repository}/manifests/{subject}",
                              headers={**self._auth_headers(repository), "Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
        manifest = self._small_manifest(
            repository, [(artifact_type.replace("+json", "") + ".layer", b"signature of " + subject.encode(), {})],
            artifactType=artifact_type, annotations=annotations or {},
            subject={"mediaType": got.headers["Content-Type"], "digest": subject,
                     "size": int(got.headers["Content-Length"])})
        body = json.dumps(manifest).encode()
        digest = self.push_manifest(repository, digest_of(body), manifest, OCI_MANIFEST, url=url)
        return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "artifactType": artifact_type,
                **({"annotations": annotations} if annotations else {})}

    def push_referrers_tag(self, repository: str, subject: str, descriptors: list[dict]) -> str:
        """The referrers tag schema, as clients maintain it where a registry has no referrers API: an index at tag
        `sha256-<hex>` listing the referrers."""
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return self.push_manifest(repository, subject.replace(":", "-"), index, OCI_INDEX)

    def delete(self, repository: str, digest: str) -> None:
        response = self._http.delete(f"{self.url}/v2/{repository}/manifests/{digest}",
                                     headers=self._auth_headers(repository, "pull,push"))
        if response.status_code != 202:
            raise RuntimeError(f"delete {repository}@{digest}: {response.status_code} {response.text[:200]}")

    def stop(self) -> None:
        stop_process(self._proc)
        self._log.close()
        self._http.close()
        if self.token_server is not None:
            self.token_server.stop()


def available() -> bool:
    return BINARY is not None
