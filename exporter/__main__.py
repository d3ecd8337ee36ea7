"""`python -m exporter` is the same as the `kube-image-exporter` command."""

import sys

from exporter.cli import main

sys.exit(main())
