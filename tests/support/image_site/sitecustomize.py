"""In an exporter process a test starts, the modules the container image does not hold cannot be imported.

tests/conftest.py puts this directory on PYTHONPATH and names those modules in KIE_TEST_HIDDEN_MODULES
(tests/support/image_packages.py). Every other process the tests start (pip, lint-imports, a credential plugin)
imports this file and is left as it is (where Python has a sitecustomize of its own, Debian's crash-report hook,
this one is found first in those processes: nothing the tests look at).
"""

import os
import sys


def _exporter(argv: list[str]) -> bool:
    """`python [options] -m exporter …` or `python [options] …/kube-image-exporter …`."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, None) == "exporter"
        if arg == "-c":
            return False
        if arg in ("-X", "-W"):  # an option whose value is the next argument
            next(args, None)
        elif not arg.startswith("-"):
            return os.path.basename(arg) == "kube-image-exporter"
    return False


if _exporter(getattr(sys, "orig_argv", [])):
    for name in os.environ.get("KIE_TEST_HIDDEN_MODULES", "").split(","):
        if name:
            sys.modules.setdefault(name, None)  # `import name` raises ImportError, as where it is not installed
