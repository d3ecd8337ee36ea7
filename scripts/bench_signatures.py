#!/usr/bin/env python3
"""What admission readiness costs a registry: requests to read the signatures of N covered images, by where the
verifiers read them, counted at a real docker-registry (and at a front with the referrers API).

    .venv/bin/python scripts/bench_signatures.py --images 1000

Each image is pushed with a cosign `.sig` tag (and, at the front, a cosign bundle as a referrer). A first read asks
the registry; a second inside the evidence's lifetime asks nothing; "per cycle" spreads the first read over the
cycles of that lifetime (30 min at the default 60 s interval).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.model.admission import SIGSTORE_BUNDLE  # noqa: E402
from exporter.model.records import Status  # noqa: E402
from exporter.sources.registry.checker import Checker  # noqa: E402
from exporter.sources.registry.credentials import ANONYMOUS  # noqa: E402
from exporter.sources.registry.settings import from_options  # noqa: E402
from exporter.sources.registry.signatures import Signatures, Wanted  # noqa: E402
from tests.support import registry as real  # noqa: E402
from tests.support.referrers import ReferrersFront  # noqa: E402


def read(host: str, digests: dict[str, str], **flags) -> tuple[int, int, float, int]:
    """(requests of a first read, of a second read, seconds of the first, images with evidence)."""
    checker = Checker(from_options(insecure=[host]))
    signatures = Signatures(checker)
    wanted = [Wanted(f"{host}/{repository}@{digest}", ANONYMOUS, host, **flags) for repository, digest in digests.items()]
    started = time.perf_counter()
    found = signatures.evidence(wanted)
    seconds = time.perf_counter() - started
    first = checker.stats.total()
    signatures.evidence(wanted)
    return first, checker.stats.total() - first, seconds, len(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=60.0, help="the serve interval, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        reg = real.Registry(Path(workdir), "none")
        front = ReferrersFront(reg.url)
        try:
            started = time.perf_counter()
            digests = {}
            for i in range(args.images):
                repository = f"team{i % 20}/app{i}"
                digests[repository] = reg.push_image(repository, "1")
                reg.push_cosign_signature(repository, digests[repository])
                reg.push_referrer(repository, digests[repository], SIGSTORE_BUNDLE, url=front.url)
            print(f"pushed {args.images} signed images in {time.perf_counter() - started:.1f} s")
            cycles = Checker(from_options()).settings.ttl[Status.AVAILABLE] / args.interval
            rows = [
                ("Kyverno default (cosign .sig tags)", reg.host, dict(referrers=False, signature_tag=True)),
                ("Kyverno cosignOCI11 / notation, referrers API", front.host, dict(referrers=True)),
                ("no referrers API: tag schema + .sig (--require-signature)", reg.host,
                 dict(referrers=True, signature_tag=True)),
            ]
            print(f"{'verifier reads':<58} {'first read':>16} {'again':>6} {'per cycle':>10}")
            for name, host, flags in rows:
                first, again, seconds, found = read(host, digests, **flags)
                print(f"{name:<58} {first:>6} in {seconds:5.1f} s {again:>6} {first / cycles:>10.0f}"
                      + ("" if found == args.images else f"  ({found} read)"))
        finally:
            front.stop()
            reg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
