"""GATS `user_test.go` mirrored in Python against the real daemon.

GATS runs three of these specs in docker:///cloudfoundry/garden-rootfs (users and groups defined by the image,
no /etc/passwd, adduser available). Offline, the same rootfs states are produced inside a busybox container by
editing /etc/passwd and /etc/group as root (Debian's busybox has no adduser/addgroup applets).
"""

from __future__ import annotations

import re

import pytest

from garden import errors, models
from tests.integration.garden.gats_support import run_for_stdout, run_process, sh


def test_large_uid_gid_range(client, container):
    """users has a sufficiently large UID/GID range."""
    out = run_for_stdout(client, container, models.ProcessSpec(user="1000000000:1000000000", path="id"))
    assert "uid=1000000000 gid=1000000000\n" in out, out


def test_user_with_large_uid_and_gid(client, container):
    """users when creating users creates a user with a large uid and gid."""
    script = ("echo 'bob:x:50000:' >> /etc/group && "
              "echo 'bob:x:50000:50000:Linux User,,,:/home/bob:/bin/sh' >> /etc/passwd && "
              "mkdir -p /home/bob && chown 50000:50000 /home/bob")
    assert run_process(client, container, sh(script, user="root"))[0] == 0
    code, out, err = run_process(client, container, models.ProcessSpec(user="bob", path="echo",
                                                                       args=["Hello Baldrick"]))
    assert code == 0, err
    assert out == "Hello Baldrick\n"


def test_supplementary_groups_from_rootfs(client, container):
    """users when rootfs defines user/groups ignores inherited groups from gdn but includes supplementary groups."""
    # GATS' image lists alice in groups 1010 and 1011 only (our rootfs also lists her in users:100).
    script = ("sed -i 's/^users:x:100:alice$/users:x:100:/' /etc/group && "
              "echo 'group1010:x:1010:alice' >> /etc/group && echo 'group1011:x:1011:alice' >> /etc/group")
    assert run_process(client, container, sh(script, user="root"))[0] == 0
    out = run_for_stdout(client, container, models.ProcessSpec(user="alice", path="cat", args=["/proc/self/status"]))
    assert re.search(r"Groups:(\s)*1010(\s)*1011(\s)*\n", out), out


def test_no_passwd_root_still_runs(client, container):
    """users when rootfs does not have an /etc/passwd can still run as root."""
    assert run_process(client, container, models.ProcessSpec(user="root", path="rm", args=["/etc/passwd"]))[0] == 0
    out = run_for_stdout(client, container, models.ProcessSpec(user="root", path="echo", args=["hello"]))
    assert "hello" in out


def test_no_passwd_non_root_fails(client, container):
    """users when rootfs does not have an /etc/passwd fails when run as non-root."""
    assert run_process(client, container, models.ProcessSpec(user="root", path="rm", args=["/etc/passwd"]))[0] == 0
    with pytest.raises(errors.GardenError,
                       match="unable to find user invalid-user: no matching entries in passwd file"):
        client.run(container, models.ProcessSpec(user="invalid-user", path="/hello"))
