"""Registry images as overlay roots: pulls from Debian's docker-registry on loopback (plain and token auth)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
from pathlib import Path

import pytest

from images.provider import DISK_SCOPE_EXCLUSIVE, DiskLimits, ImageError, RootfsRequest
from images.remote import ImageProvider
from tests.integration.images.conftest import run_with_provider, store_listing
from tests.integration.images.faulty_proxy import FaultyProxy
from tests.support.oci_images import OciImage
from tests.support.upstream_registry import UpstreamRegistry, free_port


def test_busybox_from_registry_is_a_writable_overlay_with_config(store: Path, upstream_registry: UpstreamRegistry,
                                                                 oci_busybox_layout: OciImage) -> None:
    async def body(p: ImageProvider) -> None:
        rootfs = await p.create(RootfsRequest("c1", f"docker://{upstream_registry.host}/test/busybox#v1"))
        assert os.path.ismount(rootfs.path)
        assert os.access(os.path.join(rootfs.path, "bin/busybox"), os.X_OK)
        assert os.readlink(os.path.join(rootfs.path, "bin/sh")) == "busybox"
        assert os.stat(os.path.join(rootfs.path, "home/alice")).st_uid == 1000
        assert stat.S_IMODE(os.stat(os.path.join(rootfs.path, "tmp")).st_mode) == 0o1777
        assert rootfs.config.env == ["PATH=/bin"] and rootfs.config.entrypoint == ["/bin/sh"]
        Path(rootfs.path, "tmp/written").write_text("hello")
        ran = subprocess.run(["chroot", rootfs.path, "/bin/sh", "-c", "cat /tmp/written"],
                             capture_output=True, text=True, check=True)
        assert ran.stdout.startswith("hello")
        stat_ = await p.disk_stat("c1")
        assert 0 < stat_.exclusive_bytes_used < stat_.total_bytes_used
        await p.destroy("c1")
        assert not os.path.exists(rootfs.path)
    run_with_provider(store, body)
    assert store_listing(store)["containers"] == []


def test_multilayer_whiteouts_and_opaque_dirs_hide_lower_files(store: Path,
                                                             upstream_registry: UpstreamRegistry) -> None:
    async def body(p: ImageProvider) -> None:
        rootfs = await p.create(RootfsRequest("c1", f"docker://{upstream_registry.host}/test/multilayer:v1"))
        data = Path(rootfs.path, "data")
        assert sorted(os.listdir(data)) == ["added", "keep", "opq"]
        assert os.listdir(data / "opq") == ["new"]
        assert (data / "keep").read_text() == "kept\n"
        (data / "keep").write_text("changed")  # copy-up works on the stacked lowers
        assert p.layers.unpacked == 2
    run_with_provider(store, body)


def test_index_picks_this_hosts_platform_and_digest_refs_work(store: Path, upstream_registry: UpstreamRegistry,
                                                             oci_multiarch_layout: OciImage) -> None:
    async def body(p: ImageProvider) -> None:
        by_tag = await p.create(RootfsRequest("c1", f"docker://{upstream_registry.host}/test/multiarch#v1"))
        by_digest = await p.create(RootfsRequest(
            "c2", f"docker://{upstream_registry.host}/test/multiarch@{oci_multiarch_layout.digest}"))
        assert os.path.exists(os.path.join(by_tag.path, "bin/busybox"))
        assert os.path.exists(os.path.join(by_digest.path, "bin/busybox"))
        assert p.layers.unpacked == 1
    run_with_provider(store, body)


def test_concurrent_creates_download_and_unpack_each_layer_once(tmp_path: Path, store: Path) -> None:
    from tests.support.oci_images import build_busybox
    image = build_busybox(tmp_path / "layout", extra_files={"etc/concurrent": "yes\n"})
    registry = UpstreamRegistry(tmp_path / "registry").start()
    try:
        registry.push(image, "test/concurrent")
        layer = image.layer_digests[0]

        async def body(p: ImageProvider) -> None:
            uri = f"docker://{registry.host}/test/concurrent#v1"
            roots = await asyncio.gather(*(p.create(RootfsRequest(f"c{i}", uri)) for i in range(10)))
            assert len({r.path for r in roots}) == 10
            assert p.layers.unpacked == 1
            assert p.stats.bytes_downloaded == sum(image.blobs.values())  # config + layer
        run_with_provider(store, body)
        assert registry.blob_gets(layer) == 1
    finally:
        registry.stop()


def test_token_auth_public_anonymous_and_private_with_credentials(store: Path,
                                                                 upstream_registry_auth: UpstreamRegistry) -> None:
    host = upstream_registry_auth.host

    async def body(p: ImageProvider) -> None:
        await p.create(RootfsRequest("pub", f"docker://{host}/public/busybox#v1"))
        private = f"docker://{host}/private/busybox#v1"
        with pytest.raises(ImageError, match=r"private/busybox.*(requires credentials|denied access)"):
            await p.create(RootfsRequest("anon", private))
        with pytest.raises(ImageError, match="rejected the credentials") as err:
            await p.create(RootfsRequest("bad", private, username="alice", password="wrong-pw-1234"))
        assert "wrong-pw-1234" not in str(err.value)
        rootfs = await p.create(RootfsRequest("priv", private, username="alice", password="secret"))
        assert os.path.exists(os.path.join(rootfs.path, "bin/busybox"))
        assert p.handles() == ["priv", "pub"]
    run_with_provider(store, body)
    assert not any(b"secret" in path.read_bytes() for path in store.rglob("*.json"))


def test_basic_auth_registry(store: Path, basic_registry: UpstreamRegistry) -> None:
    uri = f"docker://{basic_registry.host}/test/busybox#v1"

    async def body(p: ImageProvider) -> None:
        with pytest.raises(ImageError, match="requires credentials"):
            await p.create(RootfsRequest("anon", uri))
        with pytest.raises(ImageError, match="denied access to test/busybox with the given credentials"):
            await p.create(RootfsRequest("bad", uri, username="alice", password="nope"))
        rootfs = await p.create(RootfsRequest("ok", uri, username="alice", password="secret"))
        assert os.path.exists(os.path.join(rootfs.path, "bin/busybox"))
    run_with_provider(store, body)
    assert store_listing(store)["tmp"] == []


def test_transient_failures_are_retried(store: Path, upstream_registry: UpstreamRegistry) -> None:
    async def body(p: ImageProvider) -> None:
        proxy = await FaultyProxy(upstream_registry.host, ["503", "cut", "503"]).start()
        try:
            rootfs = await p.create(RootfsRequest("c1", f"docker://127.0.0.1:{proxy.port}/test/busybox#v1"))
        finally:
            await proxy.stop()
        assert proxy.injected == ["503", "cut", "503"]
        assert os.access(os.path.join(rootfs.path, "bin/busybox"), os.X_OK)
    run_with_provider(store, body, retries=3)


def test_unreachable_registry_fails_cleanly(store: Path) -> None:
    async def body(p: ImageProvider) -> None:
        with pytest.raises(ImageError, match=r"image docker://127\.0\.0\.1:\d+/test/x:v1: .*unreachable"):
            await p.create(RootfsRequest("c1", f"docker://127.0.0.1:{free_port()}/test/x#v1"))
    run_with_provider(store, body)
    assert store_listing(store) == {"layers": [], "tmp": [], "containers": []}


def test_missing_tag_names_the_image(store: Path, upstream_registry: UpstreamRegistry) -> None:
    async def body(p: ImageProvider) -> None:
        with pytest.raises(ImageError, match="test/busybox:nope: manifest nope not found"):
            await p.create(RootfsRequest("c1", f"docker://{upstream_registry.host}/test/busybox#nope"))
    run_with_provider(store, body)


@pytest.mark.parametrize("damage", ["corrupt", "truncate"])
def test_bad_blob_in_registry_leaves_nothing_in_the_store(tmp_path: Path, store: Path,
                                                          own_registry: UpstreamRegistry, damage: str) -> None:
    from tests.support.oci_images import build_busybox
    image = build_busybox(tmp_path / "layout", extra_files={"etc/damage": damage})
    repo = f"test/{damage}"
    own_registry.push(image, repo)
    blob = own_registry.blob_path(image.layer_digests[0])
    data = bytearray(blob.read_bytes())
    if damage == "corrupt":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    blob.write_bytes(bytes(data))

    async def body(p: ImageProvider) -> None:
        expected = "does not match its digest" if damage == "corrupt" else "truncated|broke off"
        with pytest.raises(ImageError, match=rf"image docker://{own_registry.host}/{repo}:v1: .*({expected})"):
            await p.create(RootfsRequest("c1", f"docker://{own_registry.host}/{repo}#v1"))
    run_with_provider(store, body)
    assert store_listing(store) == {"layers": [], "tmp": [], "containers": []}


def test_disk_limits_are_enforced_and_reported(store: Path, upstream_registry: UpstreamRegistry) -> None:
    async def body(p: ImageProvider) -> None:
        uri = f"docker://{upstream_registry.host}/test/busybox#v1"
        limit = DiskLimits(byte_hard=1 << 20, inode_hard=50, scope=DISK_SCOPE_EXCLUSIVE)
        rootfs = await p.create(RootfsRequest("c1", uri, disk_limits=limit))
        with pytest.raises(OSError) as err, open(os.path.join(rootfs.path, "tmp/big"), "wb") as f:
            f.write(b"x" * (2 << 20))
            f.flush()
        assert err.value.errno == 28  # ENOSPC
        used = await p.disk_stat("c1")
        assert (1 << 20) - 65536 <= used.exclusive_bytes_used <= 1 << 20
        os.unlink(os.path.join(rootfs.path, "tmp/big"))
        with pytest.raises(OSError):
            for i in range(60):
                Path(rootfs.path, f"tmp/f{i}").touch()
        base = used.total_bytes_used - used.exclusive_bytes_used
        with pytest.raises(ImageError, match="disk limit is smaller than the image"):
            await p.create(RootfsRequest("c2", uri, disk_limits=DiskLimits(byte_hard=base // 2)))
        total = await p.create(RootfsRequest("c3", uri, disk_limits=DiskLimits(byte_hard=base + (1 << 20))))
        assert os.path.ismount(total.path)
    run_with_provider(store, body)
    assert store_listing(store)["containers"] == []


def test_gc_removes_unused_layers_over_the_threshold(store: Path, upstream_registry: UpstreamRegistry) -> None:
    async def body(p: ImageProvider) -> None:
        await p.create(RootfsRequest("keep", f"docker://{upstream_registry.host}/test/multilayer#v1"))
        await p.create(RootfsRequest("gone", f"docker://{upstream_registry.host}/test/busybox#v1"))
        assert len(p.layers.layers) == 3
        await p.destroy("gone")
        removed = await p.collect_garbage(threshold=1)
        assert len(removed) == 1 and len(p.layers.layers) == 2
        assert await p.collect_garbage(threshold=1) == []  # the rest is in use
    run_with_provider(store, body)
    assert len(store_listing(store)["layers"]) == 2


def test_a_restarted_provider_reuses_layers_and_sees_leftover_roots(store: Path,
                                                                   upstream_registry: UpstreamRegistry) -> None:
    uri = f"docker://{upstream_registry.host}/test/busybox#v1"

    async def before_crash() -> None:
        provider = ImageProvider(str(store))
        await provider.create(RootfsRequest("left", uri))
        await provider.close()  # no destroy: like a daemon that died

    async def body(p: ImageProvider) -> None:
        assert p.handles() == ["left"]
        assert (await p.disk_stat("left")).total_bytes_used > 0
        await p.create(RootfsRequest("new", uri))
        assert p.layers.unpacked == 0 and p.stats.bytes_downloaded < 4096  # manifest + config only
    asyncio.run(before_crash())
    run_with_provider(store, body)
    assert store_listing(store)["containers"] == []
