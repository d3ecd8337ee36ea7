"""`serve` under a low open-file limit with more idle HTTP clients than it holds: it goes on answering
scrapes, and its own work still finds descriptors (cycles complete, a changed expected list is read again),
because the HTTP server keeps half the limit for it. A real `serve` process against the emulator, started
under `ulimit -n 256`, and 300 keep-alive clients that stay connected."""

import os
import resource
import subprocess
import sys

import pytest

from tests.conftest import make_pod
from tests.support import eventually, free_port, http_get, stop_process
from tests.test_http_server import Responses, closed_by_server, get, keep_alive

LIMIT = 256
CLIENTS = 300
IMAGES = ["127.0.0.1:9/shop/web:1", "127.0.0.1:9/shop/api:1"]  # a closed port on loopback: nothing leaves the host


def expected_list(images):
    units = ", ".join(f'"{image}": ["web"]' for image in images)
    return f'{{"images": {list(images)!r}, "units_per_image": {{{units}}}}}'.replace("'", '"')


def sample(text, family, **labels):
    """The value of `family`'s sample whose labels include `labels`, or None."""
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if (name == family or line.startswith(family + " ")) and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def low_file_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@pytest.mark.long
def test_idle_clients_beyond_the_cap_leave_the_exporter_descriptors_for_its_own_work(emulator, kubeconfig, tmp_path):
    emulator.create(make_pod("web", "shop", IMAGES[0]))
    path = tmp_path / "l.json"
    path.write_text(expected_list(IMAGES[:1]))
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                                 "--listen", f"127.0.0.1:{port}", "--interval", "1", "--expected", str(path)],
                                stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=low_file_limit)
    clients = []
    try:
        assert eventually(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=60), log.read_text()
        clients = [keep_alive(port) for _ in range(CLIENTS)]  # each answered once, then idle

        open_files = len(os.listdir(f"/proc/{proc.pid}/fd"))
        assert open_files <= LIMIT - 64, f"{open_files} descriptors open under a limit of {LIMIT}"
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        started = sample(text, "kube_image_last_cycle_timestamp_seconds")
        path.write_text(expected_list(IMAGES))  # read again at the next cycle: the exporter opens a file

        def read_again():
            text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            return (sample(text, "kube_image_last_cycle_timestamp_seconds") or 0) > started and \
                sample(text, "kube_image_expected_list_images", list="l") == 2 and \
                sample(text, "kube_image_expected_list_up", list="l") == 1

        assert eventually(read_again, timeout=60), log.read_text()[-3000:]
        assert closed_by_server(clients[0], cap=1)  # the least recently active made room for the newer ones
        clients[-1].sendall(get("/healthz"))  # the most recent is still served on its connection
        assert Responses(clients[-1]).next() == (200, b"ok\n")
    finally:
        for sock in clients:
            sock.close()
        stop_process(proc)
    errors = log.read_text()
    assert "Too many open files" not in errors and "out of file descriptors" not in errors
    assert "client connections, the most this server holds" in errors
