"""kube-image-exporter: know an image is gone from its registry before a pod fails to pull it."""

__version__ = "0.1.0"
