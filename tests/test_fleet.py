"""A fleet of real `serve` processes over emulated clusters, one real registry (behind a counting front) and
one real redis-server: what one exporter checked, the others never ask the registry again.
"""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import make_pod
from tests.emulator.server import Emulator
from tests.support import counting, eventually, free_port, http_get
from tests.support import redis as real_redis
from tests.support import registry as real
from tests.support.browser import Text

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (real.available() and real_redis.available()),
                       reason="needs docker-registry and redis-server (scripts/setup installs them)"),
]

IMAGES = 6


@pytest.fixture
def fleet(tmp_path):
    (tmp_path / "registry").mkdir()
    reg = real.Registry(tmp_path / "registry", "basic")
    for i in range(IMAGES):
        reg.push_image(f"team/app{i}", "1.0")
    front = counting.CountingFront(reg.url)
    store = real_redis.RedisServer(tmp_path)
    yield reg, front, store
    store.stop()
    front.stop()
    reg.stop()


def pull_secret(host, password):
    config = {"auths": {host: {"username": "alice", "password": password}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "regcred", "namespace": "shop"},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def cluster(tmp_path, name, objects):
    emulator = Emulator(token="t").start()
    emulator.create_many(objects)
    path = tmp_path / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump(emulator.kubeconfig({name: "default"})))
    return emulator, path


def shop(host, password="wonderland", images=range(IMAGES)):
    """Pods of the shop namespace using the images, with a pull secret of that password."""
    secret = pull_secret(host, password)
    return [secret] + [make_pod(f"app{i}", "shop", f"{host}/team/app{i}:1.0", imagePullSecrets=[{"name": "regcred"}])
                       for i in images]


class Serve:
    """One `serve` process; `stderr` kept in a file to check for tracebacks."""

    def __init__(self, tmp_path, name, kubeconfig, host, *extra):
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        self.args = [sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                     "--listen", f"127.0.0.1:{self.port}", "--interval", "1", "--insecure-registry", host, *extra]
        self.start()

    def start(self):
        self._stderr = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self._stderr, env=os.environ.copy())
        return self

    def metrics(self) -> str:
        return http_get(f"http://127.0.0.1:{self.port}/metrics")[1]

    def page(self) -> str:
        """The status page as a person reads it."""
        return Text(http_get(f"http://127.0.0.1:{self.port}/")[1]).text

    def ready(self) -> bool:
        return http_get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200

    def wait_ready(self, timeout=60):
        assert eventually(self.ready, timeout=timeout, step=0.2), self.log.read_text()[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def statuses(text: str) -> dict[str, str]:
    """image -> status from kube_image_status lines."""
    found = {}
    for line in text.splitlines():
        if line.startswith("kube_image_status{"):
            labels = dict(part.split("=", 1) for part in line[len("kube_image_status{"):line.index("}")].split(","))
            found[labels["image"].strip('"')] = labels["status"].strip('"')
    return found


@pytest.mark.long
def test_two_exporters_share_checks_keep_credentials_apart_and_survive_restart_and_redis_loss(fleet, tmp_path):
    reg, front, store = fleet
    host = front.host
    one, kube_one = cluster(tmp_path, "one", shop(host))
    # the second cluster uses the same images, and one workload with a wrong password for the first image
    wrong = [{**pull_secret(host, "wrong"), "metadata": {"name": "regcred", "namespace": "legacy"}},
             make_pod("old", "legacy", f"{host}/team/app0:1.0", imagePullSecrets=[{"name": "regcred"}])]
    two, kube_two = cluster(tmp_path, "two", shop(host) + wrong)
    exporters = []
    try:
        first = Serve(tmp_path, "first", kube_one, host, "--cache-url", store.url)
        exporters.append(first)
        first.wait_ready()
        assert set(statuses(first.metrics()).values()) == {"available"}
        assert front.total() == IMAGES

        second = Serve(tmp_path, "second", kube_two, host, "--cache-url", store.url)
        exporters.append(second)
        second.wait_ready()
        text = second.metrics()
        assert set(statuses(text).values()) == {"available", "unauthorized"}
        # what the first checked is not asked again; the wrong password is asked with its own credentials
        assert all(front.manifests[f"team/app{i}:1.0"] == 1 for i in range(1, IMAGES))
        assert front.manifests["team/app0:1.0"] == 2
        assert 'kube_image_missing{cluster="two",namespace="legacy"' in text and 'reason="unauthorized"' in text
        assert 'namespace="shop"' not in "".join(l for l in text.splitlines() if l.startswith("kube_image_missing{"))
        assert "\nkube_image_shared_cache_up 1\n" in text
        assert '\nkube_image_shared_cache_errors_total{reason="unavailable"} 0\n' in text
        sent = front.total()

        # restart inside the TTL: ready from the shared verdicts, nothing re-checked
        first.stop()
        first.start()
        first.wait_ready()
        assert set(statuses(first.metrics()).values()) == {"available"} and front.total() == sent

        # Redis lost mid-run: scrapes go on, the gauge says so, no traceback; it comes back by itself
        store.kill()
        assert eventually(lambda: "\nkube_image_shared_cache_up 0\n" in second.metrics(), timeout=20)
        assert 'kube_image_shared_cache_errors_total{reason="unavailable"} 0\n' not in second.metrics()  # counted
        assert second.ready() and set(statuses(second.metrics()).values()) == {"available", "unauthorized"}
        store.start()
        assert eventually(lambda: "\nkube_image_shared_cache_up 1\n" in second.metrics(), timeout=90)
        # a new image after the store came back empty: checked by one, shared with the other
        for emulator in (one, two):
            emulator.create(make_pod("new", "shop", f"{host}/team/app1:new", imagePullSecrets=[{"name": "regcred"}]))
        new = f"{host}/team/app1:new"  # never pushed: absent, a verdict like any other
        assert eventually(lambda: statuses(first.metrics()).get(new) == statuses(second.metrics()).get(new) == "absent",
                          timeout=30)
        assert front.manifests["team/app1:new"] == 1
    finally:
        for exporter in exporters:
            exporter.stop()
        one.stop()
        two.stop()
    for exporter in exporters:
        log = exporter.log.read_text()
        assert "Traceback" not in log and "wonderland" not in log


def missing_since(page_text: str, image: str) -> str | None:
    """The "missing since" time the status page shows for an image that is absent."""
    found = re.search(re.escape(image) + r" absent (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)", page_text)
    return found.group(1) if found else None


@pytest.mark.long
def test_restarted_exporter_keeps_missing_since_and_the_page_shows_the_shared_cache(fleet, tmp_path):
    reg, front, store = fleet
    host = front.host
    gone = f"{host}/team/gone:1.0"  # never pushed
    emulator, kubeconfig = cluster(tmp_path, "one", shop(host, images=range(2)) + [
        make_pod("gone", "shop", gone, imagePullSecrets=[{"name": "regcred"}])])
    field = json.dumps(["kube_image_missing", "one", "shop", "Pod", "gone", "main", "container", gone, ""],
                       separators=(",", ":")).encode()
    raw = store.client()

    def stored() -> float | None:
        value = raw.hget("kie:1:f:0/1:one", field)
        return float(value) if value is not None else None

    exporter = Serve(tmp_path, "page", kubeconfig, host, "--cache-url", store.url)
    try:
        exporter.wait_ready()
        assert eventually(lambda: missing_since(exporter.page(), gone) and stored(), timeout=30)
        since = missing_since(exporter.page(), gone)
        assert since == time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stored()))
        assert "Shared cache answering" in exporter.page()
        assert 0 < raw.ttl("kie:1:f:0/1:one") <= 7 * 24 * 3600

        # restarted later than a first sighting would be shown: the page keeps the stored time
        exporter.stop()
        assert eventually(lambda: time.time() > stored() + 2, timeout=5)
        exporter.start()
        exporter.wait_ready()
        assert missing_since(exporter.page(), gone) == since

        # the store lost: the page says so and memory carries on; back empty, the time is written again
        first = stored()
        store.kill()
        assert eventually(lambda: "Shared cache not answering" in exporter.page(), timeout=20)
        assert missing_since(exporter.page(), gone) == since and exporter.ready()
        store.start()
        raw = store.client()
        assert eventually(lambda: stored() == first, timeout=90)
        assert eventually(lambda: "Shared cache answering" in exporter.page(), timeout=90)

        # cleared: forgotten on the page and in the store
        emulator.delete("Pod", "shop", "gone")
        assert eventually(lambda: stored() is None and missing_since(exporter.page(), gone) is None, timeout=30)
    finally:
        exporter.stop()
        emulator.stop()
    log = exporter.log.read_text()
    assert "Traceback" not in log and "wonderland" not in log


def test_shards_split_references_with_none_lost_or_doubled_and_check_each_image_once(fleet, tmp_path):
    reg, front, store = fleet
    host = front.host
    # 40 workloads over the six images (and one absent), in three namespaces
    objects = [{**pull_secret(host, "wonderland"), "metadata": {"name": "regcred", "namespace": ns}}
               for ns in ("shop", "team-a", "team-b")]
    pods = [make_pod(f"w{i}", ("shop", "team-a", "team-b")[i % 3], f"{host}/team/app{i % (IMAGES + 1)}:1.0",
                     imagePullSecrets=[{"name": "regcred"}]) for i in range(40)]
    pulled = [{"apiVersion": "v1", "kind": "Event", "reason": "Pulled", "count": 1,
               "message": f'Successfully pulled image "{host}/team/app0:1.0" in 1.5s (1.5s including waiting)',
               "metadata": {"name": f"pulled-{ns}", "namespace": ns}, "source": {"host": "node-1"},
               "involvedObject": {"kind": "Pod", "namespace": ns, "name": "w0"}}
              for ns in ("shop", "team-a", "team-b", "team-c", "team-d")]
    emulator, kubeconfig = cluster(tmp_path, "big", objects + pods + pulled)
    shards = []
    try:
        for n in range(2):
            shards.append(Serve(tmp_path, f"shard{n}", kubeconfig, host, "--cache-url", store.url,
                                "--shard", f"kube-image-exporter-{n}", "--total-shards", "2"))
        for shard in shards:
            shard.wait_ready()
        missing = []
        for shard in shards:
            rows = [l for l in shard.metrics().splitlines() if l.startswith("kube_image_missing{")]
            assert rows  # each shard holds some of the workloads using the absent image
            missing.extend(rows)
        expected_missing = [p for p in pods if p["spec"]["containers"][0]["image"].endswith(f"app{IMAGES}:1.0")]
        assert len(missing) == len(set(missing)) == len(expected_missing)  # none lost, none doubled
        assert {line.split('workload="')[1].split('"')[0] for line in missing} == \
               {p["metadata"]["name"] for p in expected_missing}
        assert front.total() == IMAGES + 1  # each image once for both shards

        def pulls():
            return sorted(l.split('namespace="')[1].split('"')[0] for shard in shards
                          for l in shard.metrics().splitlines() if l.startswith("kube_image_pull_duration_seconds{"))

        assert eventually(lambda: len(pulls()) >= 5, timeout=20)
        assert pulls() == ["shop", "team-a", "team-b", "team-c", "team-d"]  # each pull event on one shard only
    finally:
        for shard in shards:
            shard.stop()
        emulator.stop()


def run_check(tmp_path, host, *args):
    config = tmp_path / "docker-config.json"
    config.write_text(json.dumps({"auths": {host: {"username": "alice", "password": "wonderland"}}}))
    return subprocess.run([sys.executable, "-m", "exporter", "check", "--insecure-registry", host,
                           "--docker-config", str(config), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.long
def test_check_shares_verdicts_with_a_fleet_and_goes_on_without_its_cache(fleet, tmp_path):
    reg, front, store = fleet
    host = front.host
    first = run_check(tmp_path, host, "--cache-url", store.url, *(f"{host}/team/app{i}:1.0" for i in range(3)))
    assert first.returncode == 0 and front.total() == 3, first.stderr
    # a second CI job: what the first checked is answered by the store
    second = run_check(tmp_path, host, "--cache-url", store.url, "--json",
                       *(f"{host}/team/app{i}:1.0" for i in range(4)))
    assert second.returncode == 0 and front.total() == 4, second.stderr
    assert {row["status"] for row in json.loads(second.stdout)} == {"available"}
    # an exporter whose pods pull with the same credentials asks the registry only for what no check asked
    emulator, kubeconfig = cluster(tmp_path, "one", shop(host))
    exporter = Serve(tmp_path, "after-check", kubeconfig, host, "--cache-url", store.url)
    try:
        exporter.wait_ready()
        assert set(statuses(exporter.metrics()).values()) == {"available"}
        assert front.total() == IMAGES
        assert all(front.manifests[f"team/app{i}:1.0"] == 1 for i in range(IMAGES))
    finally:
        exporter.stop()
        emulator.stop()
    # the store away: the verdicts are the same, checked here, with one line saying so and no traceback
    store.kill()
    alone = run_check(tmp_path, host, "--cache-url", store.url, f"{host}/team/app0:1.0", f"{host}/team/nope:1")
    assert alone.returncode == 1 and "Traceback" not in alone.stderr
    assert alone.stdout.splitlines()[0].startswith("available") and alone.stdout.splitlines()[1].startswith("absent")
    assert alone.stderr.count("unavailable") == 1 and "wonderland" not in alone.stderr + alone.stdout
    bad = run_check(tmp_path, host, "--cache-url", "http://:hunter2@cache:6379/0", f"{host}/team/app0:1.0")
    assert bad.returncode == 2 and "expected redis://HOST:PORT/DB" in bad.stderr and "hunter2" not in bad.stderr


def test_no_shared_cache_gauge_without_a_cache(emulator, kubeconfig):
    from exporter.serve.endpoints import Published
    from exporter.serve.loop import Exporter
    from exporter.sources.kube.clusters import load_clusters
    from exporter.sources.registry.checker import Checker

    emulator.create(make_pod("p", "ns1", "bad/Image:1"))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(), published, interval=0.3, watch_timeout=5).start()
    try:
        assert eventually(lambda: published.ready, timeout=30)
        body = published.metrics.body.decode()
        assert "# TYPE kube_image_shared_cache_up gauge" in body and "\nkube_image_shared_cache_up " not in body
    finally:
        exporter.stop()


def test_bad_cache_url_is_one_line_without_the_password(tmp_path):
    result = subprocess.run([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(tmp_path / "none"),
                             "--cache-url", "http://:hunter2@cache:6379/0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "expected redis://HOST:PORT/DB" in result.stderr and "hunter2" not in result.stderr
