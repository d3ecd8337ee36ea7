"""Image references: parsing and normalization as distribution/reference does it."""

from exporter.images.reference import ImageRef, InvalidReference, api_host, digest_of_image_id, normalize, parse

__all__ = ["ImageRef", "InvalidReference", "api_host", "digest_of_image_id", "normalize", "parse"]
