"""TLS as the node sets it: Docker's certs layout (`HOST:PORT/ca.crt`), hosts.toml `ca` and `skip_verify`.

A real docker-registry serves HTTPS on 127.0.0.1 with a certificate from a test CA the system does not
trust: without the node's certs.d the check is `tls_error`, with it `available`.
"""

import datetime
import ipaddress
import json
import logging
import ssl
import subprocess
import time
from dataclasses import replace

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import Keyring
from exporter.sources.registry.node.view import NodeOptions, NodeView
from exporter.sources.registry.settings import from_options
from tests.support import free_port, stop_process
from tests.support import registry as real

pytestmark = pytest.mark.skipif(not real.available(), reason="docker-registry not installed")


def _certificates(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it; returns (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    """(host, digest, CA path): a plain registry's storage served again over HTTPS by a second process."""
    work = tmp_path_factory.mktemp("node-tls")
    plain = real.Registry(work, "none")
    digest = plain.push_image("team/app", "1.0")
    ca, cert, key = _certificates(work)
    host = f"127.0.0.1:{free_port()}"
    config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(work / "data")}},
              "http": {"addr": host, "secret": "test", "tls": {"certificate": str(cert), "key": str(key)}}}
    (work / "tls.yml").write_text(json.dumps(config))
    log = open(work / "tls.log", "wb")
    process = subprocess.Popen([real.BINARY, "serve", str(work / "tls.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca))) as client:
            while True:
                try:
                    client.get(f"https://{host}/v2/")
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((work / "tls.log").read_text()[-2000:]) from None
                    time.sleep(0.05)
        yield host, digest, ca
    finally:
        stop_process(process)
        log.close()
        plain.stop()


def check(image, node=None):
    settings = from_options()
    keyring = Keyring()
    if node is not None:
        view = NodeView(node)
        settings, keyring = replace(settings, node=view), view.keyring()
    return Checker(settings).check_many([(image, keyring)])[(image, keyring.fingerprint)]


def test_docker_certs_layout_trusts_the_registrys_ca(tls_registry, tmp_path):
    host, digest, ca = tls_registry
    image = f"{host}/team/app:1.0"
    assert check(image).status == Status.TLS_ERROR
    (tmp_path / "certs.d" / host).mkdir(parents=True)
    (tmp_path / "certs.d" / host / "ca.crt").write_bytes(ca.read_bytes())
    result = check(image, NodeOptions(containerd_hosts_dir=tmp_path / "certs.d"))
    assert (result.status, result.digest) == (Status.AVAILABLE, digest)


@pytest.mark.parametrize("tls", ['ca = "ca.crt"', "skip_verify = true"])
def test_hosts_toml_ca_and_skip_verify_for_a_mirror(tls_registry, tmp_path, tls):
    host, digest, ca = tls_registry
    directory = tmp_path / "certs.d" / "registry.example.invalid"
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(ca.read_bytes())
    (directory / "hosts.toml").write_text(f'[host."https://{host}"]\n  capabilities = ["pull", "resolve"]\n  {tls}\n')
    result = check("registry.example.invalid/team/app:1.0", NodeOptions(containerd_hosts_dir=tmp_path / "certs.d"))
    assert (result.status, result.digest, result.endpoint) == (Status.AVAILABLE, digest, host)


def test_a_mirror_without_its_ca_is_a_tls_error(tls_registry, tmp_path):
    host, _, _ = tls_registry
    directory = tmp_path / "certs.d" / "registry.example.invalid"
    directory.mkdir(parents=True)
    (directory / "hosts.toml").write_text(f'[host."https://{host}"]\n')
    result = check("registry.example.invalid/team/app:1.0", NodeOptions(containerd_hosts_dir=tmp_path / "certs.d"))
    assert result.status == Status.TLS_ERROR  # the mirror's answer is the one reported: the upstream never resolves


def test_a_fifo_binary_or_empty_ca_file_in_hosts_toml_is_left_out_with_a_warning(tls_registry, tmp_path, caplog):
    """A CA file named by a node's hosts.toml is read the one bounded way, like every file: a FIFO never blocks the
    check round, a binary or empty file never reaches the TLS library; each is named in a warning, and the good CA
    file beside them still verifies the mirror."""
    import os

    host, digest, ca = tls_registry
    directory = tmp_path / "certs.d" / "registry.example.invalid"
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(ca.read_bytes())
    os.mkfifo(directory / "fifo.crt")
    (directory / "binary.crt").write_bytes(bytes(range(256)) * 4)
    (directory / "empty.crt").write_bytes(b"")
    (directory / "hosts.toml").write_text(
        f'[host."https://{host}"]\n  capabilities = ["pull", "resolve"]\n'
        '  ca = ["fifo.crt", "binary.crt", "empty.crt", "ca.crt"]\n')
    with caplog.at_level(logging.WARNING):
        result = check("registry.example.invalid/team/app:1.0", NodeOptions(containerd_hosts_dir=tmp_path / "certs.d"))
    assert (result.status, result.digest, result.endpoint) == (Status.AVAILABLE, digest, host)
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "fifo.crt not used: not a regular file" in warnings
    assert "binary.crt not used: not text" in warnings
    assert "empty.crt not used: no PEM certificate in it" in warnings
