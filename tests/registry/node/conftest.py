"""A credential provider plugin written for the tests: it speaks the kubelet's protocol and logs its calls.

The script reads the CredentialProviderRequest on stdin, appends the image to `NAME.log` and answers
what `NAME.json` beside it says (`auth`, `cacheKeyType`, `cacheDuration`), or misbehaves on purpose:
`mode` `fail` (exit 1 with the password on stderr), `hang`, `garbage`, `flood` (stdout without end), `deep`
(JSON 100,000 levels deep), `wrong-version`; with `requireToken` it gives credentials only to a request that
carries a ServiceAccount token; with `sleep` it takes that many seconds, unless `release()` lets it go sooner
(`slept()` says which it was, each run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

SCRIPT = '''#!{python}
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
me = os.path.join(here, os.path.basename(__file__))
config = json.load(open(me + ".json"))
request = json.load(sys.stdin)
with open(me + ".log", "a") as log:
    log.write(json.dumps({{"image": request["image"], "args": sys.argv[1:], "env": os.environ.get("PLUGIN_ENV", ""),
                          "token": request.get("serviceAccountToken", ""),
                          "annotations": request.get("serviceAccountAnnotations")}}) + "\\n")
mode = config.get("mode", "ok")
if mode == "fail":
    sys.stderr.write("could not assume role; secret was " + config.get("leak", "") + "\\n")
    sys.exit(1)
if mode == "hang":
    time.sleep(60)
if "sleep" in config:  # a slow plugin: it sleeps that long, or until the test drops NAME.release beside it
    end = time.monotonic() + config["sleep"]
    while time.monotonic() < end and not os.path.exists(me + ".release"):
        time.sleep(0.01)
    with open(me + ".slept", "a") as slept:
        slept.write("released\\n" if os.path.exists(me + ".release") else "slept\\n")
if mode == "garbage":
    print("<html>oops</html>")
    sys.exit(0)
if mode == "flood":  # an endless answer: the exporter must stop reading (and kill it) past its bound
    chunk = "x" * 65536
    while True:
        sys.stdout.write(chunk)
if mode == "deep":
    print("[" * 100000 + "]" * 100000)
    sys.exit(0)
if config.get("requireToken") and not request.get("serviceAccountToken"):
    config["auth"] = {{}}
answer = {{"apiVersion": request["apiVersion"] if mode != "wrong-version" else "v0",
          "kind": "CredentialProviderResponse", "cacheKeyType": config.get("cacheKeyType", "Registry"),
          "auth": config.get("auth", {{}})}}
if "cacheDuration" in config:
    answer["cacheDuration"] = config["cacheDuration"]
print(json.dumps(answer))
'''


class Plugin:
    """One plugin in its own bin dir; `answer(...)` rewrites what it says, `calls()` what it was asked."""

    def __init__(self, bin_dir: Path, name: str) -> None:
        self.bin_dir = bin_dir
        self.name = name
        self.path = bin_dir / name
        self.path.write_text(SCRIPT.format(python=sys.executable))
        self.path.chmod(0o755)
        self.answer()

    def answer(self, **config) -> None:
        (self.bin_dir / f"{self.name}.json").write_text(json.dumps(config))

    def release(self) -> None:
        (self.bin_dir / f"{self.name}.release").touch()

    def slept(self) -> list[str]:
        """Per run with `sleep`: "released" when `release()` came while it slept, "slept" when it slept it all."""
        path = self.bin_dir / f"{self.name}.slept"
        return path.read_text().split() if path.exists() else []

    def calls(self) -> list[dict]:
        log = self.bin_dir / f"{self.name}.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def make_plugin(tmp_path):
    def make(name: str = "test-provider") -> Plugin:
        bin_dir = tmp_path / "bin"  # one bin dir, as on a node
        bin_dir.mkdir(exist_ok=True)
        return Plugin(bin_dir, name)
    return make


def provider_config(path: Path, providers: list[dict], version: str = "kubelet.config.k8s.io/v1") -> Path:
    """Write a CredentialProviderConfig (YAML is JSON's superset: written as JSON)."""
    full = []
    for provider in providers:
        entry = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "defaultCacheDuration": "10m", **provider}
        full.append(entry)
    path.write_text(json.dumps({"apiVersion": version, "kind": "CredentialProviderConfig", "providers": full}))
    return path
