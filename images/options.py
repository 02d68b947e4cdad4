"""Command-line options for the image store and the provider they configure (for `trellis garden serve`)."""

from __future__ import annotations

import argparse

from images.provider import RootfsProvider
from images.reference import DOCKER_HUB
from images.remote import ImageProvider


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --image-store, --default-rootfs, --insecure-registry, --registry-mirror, --image-gc-threshold,
    --no-disk-limits."""
    group = parser.add_argument_group("images")
    group.add_argument("--image-store", default="/var/lib/trellis/store", help="directory for layers and rootfses")
    group.add_argument("--default-rootfs", default="",
                       help="rootfs for containers that name none (a directory, a tarball, docker:// or oci://)")
    group.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                       help="registry spoken to over plain HTTP (repeatable; loopback registries always are)")
    group.add_argument("--registry-mirror", default=DOCKER_HUB, metavar="HOST[:PORT]",
                       help="registry for docker:///repo references (default: Docker Hub)")
    group.add_argument("--image-gc-threshold", type=int, default=0, metavar="BYTES",
                       help="remove unused layers when layers take more than this (0 = never)")
    group.add_argument("--no-disk-limits", action="store_true",
                       help="ignore containers' disk limits (else enforced with a limited tmpfs upper dir)")


def create_provider(args: argparse.Namespace) -> RootfsProvider:
    """The provider for every rootfs scheme, configured from `add_arguments`' options."""
    return ImageProvider(args.image_store, args.default_rootfs, default_registry=args.registry_mirror,
                         insecure_registries=tuple(args.insecure_registry), gc_threshold=args.image_gc_threshold,
                         enforce_disk_limits=not args.no_disk_limits)
