"""Image references: parsing and normalization as distribution/reference does it."""

from exporter.images.reference import ImageRef, InvalidReference, digest_of_image_id, normalize, parse

__all__ = ["ImageRef", "InvalidReference", "digest_of_image_id", "normalize", "parse"]
