"""Session-scoped pytest fixtures for the offline registry lab.

Import them in a conftest: `from tests.support.fixtures import *  # noqa: F401,F403`.

- `oci_busybox_layout`, `oci_multilayer_layout`, `oci_multiarch_layout`: `OciImage`s (layout dir, tag "v1",
  digests), built once per session.
- `upstream_registry`: Debian's docker-registry on 127.0.0.1 (plain HTTP, no auth) with the busybox image at
  `test/busybox:v1`, the multi-layer image at `test/multilayer:v1` and the index at `test/multiarch:v1`.
- `upstream_registry_auth`: the same registry with token auth (user alice / password secret; anonymous may
  pull `public/*` only) holding busybox at `private/busybox:v1` and `public/busybox:v1`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oci_images import OciImage, build_busybox, build_multiarch, build_multilayer
from tests.support.upstream_registry import UpstreamRegistry

__all__ = ["oci_busybox_layout", "oci_multiarch_layout", "oci_multilayer_layout", "upstream_registry",
           "upstream_registry_auth"]


@pytest.fixture(scope="session")
def oci_busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    return build_busybox(tmp_path_factory.mktemp("oci") / "busybox")


@pytest.fixture(scope="session")
def oci_multilayer_layout(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    return build_multilayer(tmp_path_factory.mktemp("oci") / "multilayer")


@pytest.fixture(scope="session")
def oci_multiarch_layout(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    return build_multiarch(tmp_path_factory.mktemp("oci") / "multiarch")


@pytest.fixture(scope="session")
def upstream_registry(tmp_path_factory: pytest.TempPathFactory, oci_busybox_layout: OciImage,
                      oci_multilayer_layout: OciImage,
                      oci_multiarch_layout: OciImage) -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry(tmp_path_factory.mktemp("upstream"))
    try:
        registry.start()
        registry.push(oci_busybox_layout, "test/busybox")
        registry.push(oci_multilayer_layout, "test/multilayer")
        registry.push(oci_multiarch_layout, "test/multiarch")
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def upstream_registry_auth(tmp_path_factory: pytest.TempPathFactory,
                           oci_busybox_layout: OciImage) -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry(tmp_path_factory.mktemp("upstream-auth"), token_auth=True)
    try:
        registry.start()
        registry.push(oci_busybox_layout, "private/busybox")
        registry.push(oci_busybox_layout, "public/busybox")
        yield registry
    finally:
        registry.stop()
