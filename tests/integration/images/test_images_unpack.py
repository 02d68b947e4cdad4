"""The safe unpacker on real files (as root): whiteouts, links, devices, and hostile entries."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from pathlib import Path

import pytest

from images.unpack import UnpackError, sniff, unpack
from tests.integration.images.layers_lab import entry, tar_bytes, zstd


def unpack_bytes(tmp_path: Path, blob: bytes, devices: bool = True) -> tuple[Path, str]:
    src, dest = tmp_path / "layer.blob", tmp_path / "layer"
    src.write_bytes(blob)
    dest.mkdir()
    return dest, unpack(str(src), sniff(str(src)), str(dest), devices)


def test_whiteouts_become_overlay_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    tar = tar_bytes([entry("d", "dir", mode=0o755), entry("d/.wh.gone"), entry("o", "dir", mode=0o755),
                     entry("o/.wh..wh..opq"), entry("o/new", data=b"n")])
    dest, diff_id = unpack_bytes(tmp_path, gzip.compress(tar))
    assert diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    st = os.lstat(dest / "d/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "o", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(dest / "o")) == ["new"]


def test_files_links_metadata_and_compressions(tmp_path: Path) -> None:
    tar = tar_bytes([entry("bin", "dir", mode=0o755), entry("bin/tool", data=b"#!x", mode=0o4755),
                     entry("bin/alias", "symlink", target="/bin/tool"),
                     entry("bin/hard", "hardlink", target="bin/tool"),
                     entry("etc", "dir", mode=0o700), entry("etc/cap", data=b"c", xattrs={"user.note": "hi"}),
                     entry("etc/pipe", "fifo")])
    for name, blob in (("plain", tar), ("zstd", zstd(tar))):
        (tmp_path / name).mkdir()
        dest, diff_id = unpack_bytes(tmp_path / name, blob)
        assert diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
        assert stat.S_IMODE(os.stat(dest / "bin/tool").st_mode) == 0o4755
        assert os.readlink(dest / "bin/alias") == "/bin/tool"
        assert os.stat(dest / "bin/hard").st_ino == os.stat(dest / "bin/tool").st_ino
        assert stat.S_IMODE(os.stat(dest / "etc").st_mode) == 0o700
        assert os.stat(dest / "etc").st_mtime == 1_600_000_000
        assert os.getxattr(dest / "etc/cap", "user.note") == b"hi"
        assert stat.S_ISFIFO(os.lstat(dest / "etc/pipe").st_mode)


def test_device_nodes_only_when_allowed(tmp_path: Path) -> None:
    tar = tar_bytes([entry("null", "chr", major=1, minor=3, mode=0o666)])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dest, _ = unpack_bytes(tmp_path / "a", tar, devices=True)
    assert os.lstat(dest / "null").st_rdev == os.makedev(1, 3)
    dest, _ = unpack_bytes(tmp_path / "b", tar, devices=False)
    assert not os.path.lexists(dest / "null")


def test_a_later_entry_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("untouched")
    tar = tar_bytes([entry("a", "symlink", target=str(outside)), entry("a", data=b"inside")])
    dest, _ = unpack_bytes(tmp_path, tar)
    assert (dest / "a").read_bytes() == b"inside" and not os.path.islink(dest / "a")
    assert outside.read_text() == "untouched"


@pytest.mark.parametrize("entries, message", [
    ([entry("../escape", data=b"x")], "escapes the layer"),
    ([entry("a/../../escape", data=b"x")], "escapes the layer"),
    ([entry("/etc/escape", data=b"x")], "absolute path"),
    ([entry("link", "symlink", target=".."), entry("link/escape", data=b"x")], "not a directory"),
    ([entry("link", "symlink", target="/"), entry("link/escape", data=b"x")], "not a directory"),
    ([entry("h", "hardlink", target="../outside")], "escapes the layer"),
    ([entry("h", "hardlink", target="/etc/passwd")], "absolute path"),
    ([entry("h", "hardlink", target="missing")], "not in this layer"),
    ([entry(".wh..")], "invalid whiteout"),
])
def test_hostile_entries_are_rejected_and_nothing_escapes(tmp_path: Path, entries: list, message: str) -> None:
    (tmp_path / "outside").write_text("untouched")
    with pytest.raises(UnpackError, match=message):
        unpack_bytes(tmp_path, tar_bytes(entries))
    assert sorted(os.listdir(tmp_path)) == ["layer", "layer.blob", "outside"]
    assert (tmp_path / "outside").read_text() == "untouched"
    assert not os.path.exists("/etc/escape") and not os.path.exists("/escape")


def test_truncated_and_garbage_layers_are_errors(tmp_path: Path) -> None:
    tar = tar_bytes([entry("big", data=os.urandom(100_000))])
    (tmp_path / "t").mkdir()
    (tmp_path / "g").mkdir()
    with pytest.raises(UnpackError, match="not a valid tar"):
        unpack_bytes(tmp_path / "t", gzip.compress(tar)[:20_000])
    with pytest.raises(UnpackError, match="not a valid tar"):
        unpack_bytes(tmp_path / "g", b"\x1f\x8b" + os.urandom(1000))
