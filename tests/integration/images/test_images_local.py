"""Directories, rootfs tarballs and OCI layouts as roots, and bad input that must leave nothing behind."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from images.busybox import build_rootfs
from images.provider import ImageError, RootfsRequest
from images.remote import ImageProvider
from tests.integration.images.conftest import run_with_provider, store_listing
from tests.integration.images.layers_lab import entry, layout_with_layer, tar_bytes
from tests.support.oci_images import LayoutWriter, OciImage, TarEntry, digest_of, gzip_layer

EMPTY = {"layers": [], "tmp": [], "containers": []}


def test_directory_rootfs_and_default_rootfs(tmp_path: Path, store: Path) -> None:
    rootfs_dir = build_rootfs(str(tmp_path / "busybox"))

    async def body(p: ImageProvider) -> None:
        a = await p.create(RootfsRequest("a", ""))
        b = await p.create(RootfsRequest("b", f"raw://{rootfs_dir}"))
        Path(a.path, "tmp/only-in-a").write_text("a")
        assert not os.path.exists(os.path.join(b.path, "tmp/only-in-a"))
        assert not os.path.exists(os.path.join(rootfs_dir, "tmp/only-in-a"))
        assert (await p.disk_stat("a")).exclusive_inodes_used == 2  # tmp/ (copied up) and the file
    run_with_provider(store, body, default_rootfs=rootfs_dir)
    assert store_listing(store) == EMPTY


def test_rootfs_tarball_is_unpacked_once(tmp_path: Path, store: Path) -> None:
    tarball = tmp_path / "rootfs.tgz"
    tarball.write_bytes(gzip.compress(tar_bytes([entry("etc", "dir", mode=0o755), entry("etc/hi", data=b"hi\n")])))

    async def body(p: ImageProvider) -> None:
        for handle in ("a", "b"):
            rootfs = await p.create(RootfsRequest(handle, str(tarball)))
            assert Path(rootfs.path, "etc/hi").read_text() == "hi\n"
        assert p.layers.unpacked == 1
    run_with_provider(store, body)


def test_oci_layout_reference(store: Path, oci_multilayer_layout: OciImage) -> None:
    async def body(p: ImageProvider) -> None:
        rootfs = await p.create(RootfsRequest("a", f"oci://{oci_multilayer_layout.layout}#v1"))
        assert sorted(os.listdir(os.path.join(rootfs.path, "data"))) == ["added", "keep", "opq"]
        by_digest = await p.create(RootfsRequest("b", f"oci://{oci_multilayer_layout.layout}@"
                                                      f"{oci_multilayer_layout.digest}"))
        assert os.path.exists(os.path.join(by_digest.path, "data/keep"))
    run_with_provider(store, body)


def test_many_layers_exceed_the_mount_option_page(tmp_path: Path, store: Path) -> None:
    writer = LayoutWriter(tmp_path / "deep")
    layers = [gzip_layer([TarEntry("layers", "dir", mode=0o755), TarEntry(f"layers/{i}", data=b"x")])
              for i in range(45)]
    image = writer.finish(writer.image(layers), "v1")

    async def body(p: ImageProvider) -> None:
        rootfs = await p.create(RootfsRequest("deep", f"oci://{image.layout}#v1"))
        assert len(os.listdir(os.path.join(rootfs.path, "layers"))) == 45
    run_with_provider(store, body)


@pytest.mark.parametrize("uri, message", [
    ("relative/dir", "unsupported reference"),
    ("docker://", "expected docker://host/repository"),
    ("docker://127.0.0.1:5000/UPPER#v1", "invalid repository name"),
    ("docker://127.0.0.1:5000/repo#bad tag", "invalid tag or digest"),
    ("docker://user:pw@127.0.0.1/repo#v1", "credentials in the reference"),
    ("oci://relative#v1", "absolute layout path"),
    ("/nonexistent/rootfs", "not a directory or a tarball"),
])
def test_bad_references(store: Path, uri: str, message: str) -> None:
    async def body(p: ImageProvider) -> None:
        with pytest.raises(ImageError, match=message) as err:
            await p.create(RootfsRequest("a", uri))
        assert "pw@" not in str(err.value)
    run_with_provider(store, body)
    assert store_listing(store) == EMPTY


def _bad_layout(kind: str, layout: Path) -> OciImage:
    tar = tar_bytes([entry("ok", data=b"fine")])
    if kind == "escape":
        return layout_with_layer(layout, tar_bytes([entry("ok", data=b"x"), entry("../../evil", data=b"x")]))
    if kind == "diff_id":
        return layout_with_layer(layout, tar, diff_id="sha256:" + "0" * 64)
    if kind == "media_type":
        return layout_with_layer(layout, tar, layer_type="application/vnd.example.unknown")
    image = layout_with_layer(layout, tar)
    if kind == "not_json":
        digest = digest_of(b"this is not json")
        (layout / "blobs/sha256" / digest.split(":", 1)[1]).write_bytes(b"this is not json")
        index = (layout / "index.json").read_text()
        (layout / "index.json").write_text(index.replace(image.digest, digest))
    if kind == "truncated":
        blob = layout / "blobs/sha256" / image.layer_digests[0].split(":", 1)[1]
        blob.write_bytes(blob.read_bytes()[:100])
    return image


@pytest.mark.parametrize("kind, message", [
    ("escape", "escapes the layer"),
    ("diff_id", "but the config says"),
    ("media_type", "unknown layer media type"),
    ("not_json", "manifest is not JSON"),
    ("truncated", "has 100 bytes, expected"),
])
def test_bad_layouts_fail_with_the_image_and_cause(tmp_path: Path, store: Path, kind: str, message: str) -> None:
    image = _bad_layout(kind, tmp_path / "layout")

    async def body(p: ImageProvider) -> None:
        with pytest.raises(ImageError, match=rf"image oci://{image.layout}#v1: .*{message}"):
            await p.create(RootfsRequest("a", f"oci://{image.layout}#v1"))
    run_with_provider(store, body)
    assert store_listing(store) == EMPTY
    assert not (tmp_path / "evil").exists()


def test_duplicate_handle_is_refused_without_touching_the_first(tmp_path: Path, store: Path) -> None:
    rootfs_dir = build_rootfs(str(tmp_path / "busybox"))

    async def body(p: ImageProvider) -> None:
        first = await p.create(RootfsRequest("a", rootfs_dir))
        with pytest.raises(ImageError, match="already exists"):
            await p.create(RootfsRequest("a", rootfs_dir))
        assert os.path.ismount(first.path)
    run_with_provider(store, body)
