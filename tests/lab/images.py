"""The base-image stand-ins and the app image build live in `ops.sandbox.images`; tests import them from here."""

from ops.sandbox.images import (
    APP_REPOSITORY,
    BUSYBOX_IMAGE,
    CACHE,
    BuiltImage,
    build_app_image,
    ensure_base_images,
    ensure_image,
    from_images,
    missing_lab_tools,
    stand_in,
)

__all__ = ["APP_REPOSITORY", "BUSYBOX_IMAGE", "CACHE", "BuiltImage", "build_app_image", "ensure_base_images",
           "ensure_image", "from_images", "missing_lab_tools", "stand_in"]
