"""AWS ECR's API for tests: moto's ECR (`moto.server.ThreadedMotoServer`) on 127.0.0.1, behind a thin front of our own
that adds what moto does not model, each as the ECR API Reference and User Guide describe it.

moto models (moto 5.2, `moto/ecr`): repositories, `PutImage` (tags, digests), `DescribeImages` (`imageTags`,
`imagePushedAt`), `GetLifecyclePolicy` (the stored JSON text; `LifecyclePolicyNotFoundException`,
`RepositoryNotFoundException`), the AWS JSON 1.1 protocol and its errors. What it does not, and the front adds:
- `DescribeImages` pagination: moto returns every image at once and ignores `maxResults`/`nextToken`; the front pages
  moto's list (`maxResults` 1..1000, more is `InvalidParameterException`; an opaque `nextToken`; API Reference
  "DescribeImages");
- `lastRecordedPullTime`: moto never records pulls; the front adds the times set in `pulls` (API Reference
  "ImageDetail": absent for an image never pulled);
- archive: moto has no storage classes; the front gives `imageStatus` (`ARCHIVED` with `lastArchivedAt` for the
  digests in `archived`) and honours `filter.imageStatus` (only `ACTIVE` images unless asked: "DescribeImagesFilter");
- `GetLifecyclePolicyPreview`: not implemented in moto (a 500); the front answers `previews` (`status`,
  `lifecyclePolicyText`, `previewResults[{imageDigest, imageTags, action, appliedRulePriority}]`, paged by
  `maxResults`/`nextToken`) or `LifecyclePolicyPreviewNotFoundException`, as ECR does where no preview was started;
- lifecycle policy texts: moto's `PutLifecyclePolicy` validator predates `sinceImagePulled`, `transition` and
  `storageClass` (it refuses them), so `policy()` stores the text on moto's repository as ECR would have accepted it;
- IAM: moto checks no permissions; `forbid` makes an action answer `AccessDeniedException` (HTTP 400, as ECR does).
Faults for tests: `forbid` (actions refused), `endless` (repositories whose `DescribeImages` always has a next page),
`garbage` (an `imagePushedAt` replaced by a string that is no timestamp). `requests` counts the calls by action.
"""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
TARGET = "AmazonEC2ContainerRegistry_V20150921."
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAEXPORTERTEST", "AWS_SECRET_ACCESS_KEY": "canary-secret-never-logged",
               "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}


def rule(priority, count_type="imageCountMoreThan", count=1, status="any", patterns=None, prefixes=None,
         action="expire", **selection) -> dict:
    """A lifecycle rule as the User Guide's "Lifecycle policy properties" writes it."""
    chosen = {"tagStatus": status, "countType": count_type, "countNumber": count, **selection}
    if count_type != "imageCountMoreThan":
        chosen["countUnit"] = "days"
    if patterns is not None:
        chosen["tagPatternList"] = list(patterns)
    if prefixes is not None:
        chosen["tagPrefixList"] = list(prefixes)
    return {"rulePriority": priority, "description": f"rule {priority}", "selection": chosen,
            "action": {"type": action, **({"targetStorageClass": "archive"} if action == "transition" else {})}}


def policy_text(*rules) -> str:
    return json.dumps({"rules": list(rules)})


class ECR:
    host = HOST

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
        self._moto = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
        self._moto.start()
        self._moto_port = self._moto.get_host_and_port()[1]
        self.forbid: set[str] = set()
        self.endless: set[str] = set()
        self.garbage: dict[str, str] = {}  # digest -> what imagePushedAt says instead
        self.pulls: dict[str, float] = {}  # digest -> lastRecordedPullTime
        self.archived: dict[str, float] = {}  # digest -> lastArchivedAt (imageStatus ARCHIVED)
        self.previews: dict[str, dict] = {}  # repository -> a GetLifecyclePolicyPreview answer
        self.requests: collections.Counter[str] = collections.Counter()
        self._seq = itertools.count()
        self._backend.repositories.clear()  # moto's state is the process's: each emulator starts empty
        ecr = self

        class Front(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", "front")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, kind: str, message: str) -> None:
                self._send(400, {"__type": kind, "message": message})

            def _moto_call(self, raw: bytes) -> tuple[int, bytes]:
                connection = http.client.HTTPConnection("127.0.0.1", ecr._moto_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                connection.request("POST", self.path, body=raw, headers=headers)
                response = connection.getresponse()
                out = (response.status, response.read())
                connection.close()
                return out

            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = (self.headers.get("X-Amz-Target") or "").removeprefix(TARGET)
                ecr.requests[action] += 1
                body = json.loads(raw or b"{}")
                if action in ecr.forbid:
                    return self._error("AccessDeniedException",
                                       f"User: arn:aws:sts::{ACCOUNT}:assumed-role/exporter/i is not authorized to "
                                       f"perform: ecr:{action} on resource: arn:aws:ecr:{REGION}:{ACCOUNT}:"
                                       f"repository/{body.get('repositoryName')}")
                if action == "GetLifecyclePolicyPreview":
                    return self._preview(body)
                if action == "DescribeImages":
                    return self._describe(raw, body)
                status, data = self._moto_call(raw)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _page(self, body: dict, items: list, limit: int) -> tuple[list, dict]:
                size = body.get("maxResults", limit)
                if not isinstance(size, int) or not 1 <= size <= limit:
                    raise ValueError(f"maxResults {size!r} is not in 1..{limit}")
                start = int(body.get("nextToken") or 0)
                more = {"nextToken": str(start + size)} if start + size < len(items) else {}
                return items[start:start + size], more

            def _describe(self, raw: bytes, body: dict) -> None:
                repository = body.get("repositoryName")
                if repository in ecr.endless:
                    page = [{"registryId": ACCOUNT, "repositoryName": repository, "imageDigest": f"sha256:{n:064x}",
                             "imageTags": [f"t{n}"], "imagePushedAt": 1.7e9} for n in range(body.get("maxResults", 100))]
                    return self._send(200, {"imageDetails": page, "nextToken": f"{next(ecr._seq)}"})
                status, data = self._moto_call(json.dumps({k: v for k, v in body.items()
                                                           if k not in ("maxResults", "nextToken")}).encode())
                if status != 200:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                images = sorted(json.loads(data)["imageDetails"], key=lambda d: d["imageDigest"])
                for detail in images:
                    if detail["imageDigest"] in ecr.pulls:
                        detail["lastRecordedPullTime"] = ecr.pulls[detail["imageDigest"]]
                    if detail["imageDigest"] in ecr.garbage:
                        detail["imagePushedAt"] = ecr.garbage[detail["imageDigest"]]
                    detail["imageStatus"] = "ARCHIVED" if detail["imageDigest"] in ecr.archived else "ACTIVE"
                    if detail["imageDigest"] in ecr.archived:
                        detail["lastArchivedAt"] = ecr.archived[detail["imageDigest"]]
                wanted = (body.get("filter") or {}).get("imageStatus", "ACTIVE")  # ACTIVE unless asked
                images = [d for d in images if wanted == "ANY" or d["imageStatus"] == wanted]
                try:
                    page, more = self._page(body, images, 1000)
                except ValueError as exc:
                    return self._error("InvalidParameterException", str(exc))
                self._send(200, {"imageDetails": page, **more})

            def _preview(self, body: dict) -> None:
                repository = body.get("repositoryName")
                found = ecr.previews.get(repository)
                if found is None:
                    return self._error("LifecyclePolicyPreviewNotFoundException",
                                       f"There is no preview for the repository '{repository}'")
                try:
                    page, more = self._page(body, found.get("previewResults", []), 100)
                except ValueError as exc:
                    return self._error("InvalidParameterException", str(exc))
                self._send(200, {"registryId": ACCOUNT, "repositoryName": repository, **found,
                                 "previewResults": page, **more})

        self._front = ThreadingHTTPServer(("127.0.0.1", 0), Front)
        self._front.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._front.server_address[1]}"
        threading.Thread(target=self._front.serve_forever, args=(0.05,), daemon=True).start()  # stop() waits one poll
        import boto3

        self._admin = boto3.session.Session(aws_access_key_id="admin", aws_secret_access_key="admin").client(
            "ecr", region_name=REGION, endpoint_url=f"http://127.0.0.1:{self._moto_port}")

    @property
    def _backend(self):
        from moto.backends import get_backend

        return get_backend("ecr")[ACCOUNT][REGION]

    def repository(self, name: str, policy: str | None = None) -> None:
        self._admin.create_repository(repositoryName=name)
        if policy is not None:
            self.policy(name, policy)

    def policy(self, name: str, text: str) -> None:
        """Stores a lifecycle policy text as ECR would have accepted it (moto's validator lags ECR's)."""
        self._backend.repositories[name].lifecycle_policy = text

    def push(self, repository: str, *tags: str, pushed: float = 1.7e9, pulled: float | None = None) -> str:
        """An image with `tags`, pushed at `pushed` (Unix time); its digest."""
        n = next(self._seq)  # moto's digest is a hash of the layers' digests (not of the manifest): one layer each
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": f"sha256:{n:064x}", "size": 2},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                           "digest": f"sha256:{n:064x}", "size": 2}]})
        digest = None
        for tag in tags or (None,):
            put = self._admin.put_image(repositoryName=repository, imageManifest=manifest,
                                        **({"imageTag": tag} if tag else {}))
            digest = put["image"]["imageId"]["imageDigest"]
        for image in self._backend.repositories[repository].images:
            if image.image_digest == digest:
                image.image_pushed_at = pushed
        if pulled is not None:
            self.pulls[digest] = pulled
        return digest

    def stop(self) -> None:
        self._backend.repositories.clear()
        self._front.shutdown()
        self._front.server_close()
        self._moto.stop()
