"""Attacks from inside real containers through the API: each fails unprivileged; privileged shows what it allows."""

from __future__ import annotations

import io
import json
import os

import pytest

from garden import models
from tests.garden_server import cgroup_dirs

ROOT_HOST_ID = 4294967294
UNPRIVILEGED_CAPS = "00000000a80425fb"  # Garden's (and Docker's) 14 capabilities
NON_ROOT_PRIVILEGED_CAPS = "00000000a82425fb"  # the same plus CAP_SYS_ADMIN
NO_CAPS = "0000000000000000"


def sh(client, handle: str, script: str, user: str = "", **spec) -> tuple[int, str, str]:
    """Run `sh -c script` in the container; (exit status, stdout, stderr)."""
    out, err = io.BytesIO(), io.BytesIO()
    process = client.run(handle, models.ProcessSpec(path="sh", args=["-c", script], user=user, **spec),
                         stdout=out, stderr=err)
    return process.wait(30), out.getvalue().decode(), err.getvalue().decode()


def status_fields(text: str) -> dict[str, str]:
    """/proc/<pid>/status as a dict."""
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def host_caps() -> int:
    with open("/proc/self/status") as f:
        return int(status_fields(f.read())["CapBnd"], 16)


def init_pid(server, handle: str) -> int:
    with open(os.path.join(server.depot, handle, "state.json")) as f:
        return json.load(f)["init_pid"]


@pytest.fixture
def unprivileged(make) -> str:
    return make(user=False)


@pytest.fixture
def privileged(make) -> str:
    return make(user=False, privileged=True)


# --- user namespace --------------------------------------------------------------------------------------------


def test_unprivileged_root_is_the_hosts_maximus_and_sees_image_files_as_root(client, garden_server, unprivileged):
    code, out, _ = sh(client, unprivileged, "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c '%u:%g' /bin "
                      "/etc/passwd /; touch /root/potato /etc/new && stat -c '%u:%g' /root/potato && "
                      "echo hi > /dev/stdout")
    assert code == 0
    lines = out.split("\n")
    garden_map = [["0", str(ROOT_HOST_ID), "1"], ["1", "1", str(ROOT_HOST_ID - 1)]]
    assert [line.split() for line in lines[:4]] == garden_map * 2
    assert lines[4:10] == ["0", "0:0", "0:0", "0:0", "0:0", "hi"]
    # on the host, what container root wrote belongs to maximus, and its processes run as maximus
    pid = init_pid(garden_server, unprivileged)
    assert os.stat(f"/proc/{pid}/root/root/potato").st_uid == ROOT_HOST_ID
    with open(f"/proc/{pid}/status") as f:
        assert status_fields(f.read())["Uid"].split() == [str(ROOT_HOST_ID)] * 4


def test_privileged_root_is_host_root(client, privileged):
    code, out, _ = sh(client, privileged, "cat /proc/self/uid_map")
    assert (code, out.split()) == (0, ["0", "0", "4294967295"])


def test_files_written_by_alice_belong_to_alice(client, unprivileged):
    code, out, _ = sh(client, unprivileged, "touch /home/alice/mine && stat -c '%U %u' /home/alice/mine", user="alice")
    assert (code, out) == (0, "alice 1000\n")


# --- capabilities ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "expected"), [
    ("", {"CapInh": UNPRIVILEGED_CAPS, "CapPrm": UNPRIVILEGED_CAPS, "CapEff": UNPRIVILEGED_CAPS,
          "CapBnd": UNPRIVILEGED_CAPS, "CapAmb": NO_CAPS}),
    ("1000:1000", {"CapInh": UNPRIVILEGED_CAPS, "CapPrm": NO_CAPS, "CapEff": NO_CAPS, "CapBnd": UNPRIVILEGED_CAPS,
                   "CapAmb": NO_CAPS}),
])
def test_unprivileged_capabilities(client, unprivileged, user, expected):
    code, out, _ = sh(client, unprivileged, "cat /proc/self/status", user=user)
    assert code == 0
    fields = status_fields(out)
    assert {k: fields[k] for k in expected} == expected


def test_unprivileged_init_has_the_reduced_set(client, unprivileged):
    code, out, _ = sh(client, unprivileged, "cat /proc/1/status")
    fields = status_fields(out)
    assert (code, fields["CapEff"], fields["CapBnd"], fields["Seccomp"]) == \
        (0, UNPRIVILEGED_CAPS, UNPRIVILEGED_CAPS, "2")


def test_privileged_capabilities(client, privileged):
    full = f"{host_caps() & (1 << 38) - 1:016x}"  # Garden's 38, less what this host's root lacks
    _, out, _ = sh(client, privileged, "cat /proc/self/status")
    fields = status_fields(out)
    assert [fields[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp")] == \
        [full] * 4 + [NO_CAPS, "0"]
    _, out, _ = sh(client, privileged, "cat /proc/self/status", user="alice")
    fields = status_fields(out)
    assert [fields[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd")] == \
        [NON_ROOT_PRIVILEGED_CAPS, NO_CAPS, NO_CAPS, NON_ROOT_PRIVILEGED_CAPS]


def test_capabilities_cannot_be_raised(client, unprivileged, privileged):
    # setpriv asks the kernel for CAP_SYS_ADMIN and CAP_SYS_MODULE back: not in the bounding set
    code, _, err = sh(client, unprivileged, "setpriv --inh-caps +sys_admin,+sys_module --ambient-caps +sys_admin true")
    assert code != 0, err
    code, _, err = sh(client, privileged, "setpriv --inh-caps +sys_admin --ambient-caps +sys_admin true")
    assert code == 0, err


# --- seccomp, mount, unshare, modules --------------------------------------------------------------------------


def test_unprivileged_cannot_mount_unshare_or_load_modules(client, unprivileged):
    code, out, _ = sh(client, unprivileged, "grep Seccomp: /proc/self/status")
    assert out.split() == ["Seccomp:", "2"]
    for attack in ("mount -t tmpfs none /mnt", "umount /proc", "unshare --user whoami", "unshare -m true",
                   "unshare -n true", "nsenter -t 1 -m true", "insmod /bin/busybox", "chroot / true && mount -t proc "
                   "proc /mnt", "mkdir -p /mnt/s && mount --bind /mnt/s /mnt/s"):
        code, _, err = sh(client, unprivileged, attack)
        assert code != 0, attack
        assert "not permitted" in err or "denied" in err or "No such" in err, (attack, err)


def test_privileged_can_mount_and_unshare(client, privileged):
    code, out, err = sh(client, privileged, "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && grep -c /mnt/t "
                        "/proc/mounts && unshare -m -n true && echo ok")
    assert (code, out) == (0, "1\nok\n"), err


# --- /proc, /sys, masked paths, devices, cgroups ---------------------------------------------------------------


def test_unprivileged_kernel_knobs_are_read_only_and_host_info_masked(client, unprivileged):
    code, out, _ = sh(client, unprivileged, "grep -E ' /(sys|proc/sys) ' /proc/mounts | cut -d' ' -f2,4 | cut -c1-12; "
                      "grep cgroup /proc/mounts | grep -vc ' ro,'; "
                      "for p in /proc/kcore /proc/latency_stats /proc/sched_debug "
                      "/proc/timer_list /proc/timer_stats /proc/keys; do [ -e $p ] && stat -c '%F %t' $p; done; "
                      "ls -A /sys/firmware | wc -l; cat /proc/keys | wc -c")
    lines = out.split("\n")
    assert lines[:3] == ["/sys ro,nosu", "/proc/sys ro", "0"]  # any cgroup mount is read-only
    assert set(lines[3:-3]) <= {"character special file 1"} and lines[3:-3], out
    assert lines[-3:] == ["0", "0", ""]
    for attack in ("echo x > /proc/sys/kernel/hostname", "echo 1 > /sys/kernel/profiling",
                   "echo h > /proc/sysrq-trigger", "echo 1 > /proc/sys/vm/drop_caches"):
        code, _, _ = sh(client, unprivileged, attack)
        assert code != 0, attack
    assert sh(client, unprivileged, "hostname")[1] != "x\n"


def test_privileged_proc_is_writable(client, privileged):
    # the UTS namespace is the container's own: this renames only the container
    code, out, _ = sh(client, privileged, "echo trellis-priv > /proc/sys/kernel/hostname && hostname; "
                      "grep -E '^(proc /proc|sysfs /sys) ' /proc/mounts | cut -d' ' -f4 | cut -c1-2; "
                      "grep -c cgroup /proc/mounts")
    assert (code, out) == (1, "trellis-priv\nrw\nro\n0\n")


def test_device_cgroup(client, unprivileged, privileged):
    def rules(handle: str) -> list[str]:
        path = next(d for d in cgroup_dirs(handle) if "/devices/" in d)
        with open(path + "/devices.list") as f:
            return f.read().split("\n")

    assert "a *:* rwm" not in rules(unprivileged) and "c 1:3 rwm" in rules(unprivileged)
    assert rules(privileged)[0] == "a *:* rwm"
    code, out, _ = sh(client, unprivileged, "head -c 3 /dev/zero | wc -c; ls /dev/fuse; mknod /tmp/sda b 8 0")
    assert code != 0 and out == "3\n"
    code, _, _ = sh(client, privileged, "ls /dev/fuse")
    assert code == 0


# --- isolation: fds, other containers, the daemon --------------------------------------------------------------


def test_no_daemon_fd_leaks(client, unprivileged, privileged):
    for handle in (unprivileged, privileged):
        code, out, _ = sh(client, handle, "ls /proc/self/fd; for f in /proc/1/fd/*; do readlink $f; done")
        assert (code, out) == (0, "0\n1\n2\n3\n" + "/dev/null\n" * 3 + "anon_inode:[signalfd]\n")


def test_containers_cannot_see_or_signal_each_other(client, make):
    victim, attacker = make(user=False), make(user=False)
    sleeper = client.run(victim, models.ProcessSpec(path="sleep", args=["4242"]))
    code, out, err = sh(client, victim, "pidof sleep")
    assert code == 0, (out, err)
    host_pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _cmdline(p) == "sleep\x004242\x00"]
    assert len(host_pids) == 1
    assert sh(client, victim, "ps -o args | grep -c ^sleep")[1] == "1\n"
    assert sh(client, attacker, "ps -o args | grep -c ^sleep")[1] == "0\n"
    for attack in (f"kill -9 {host_pids[0]}", f"ls /proc/{host_pids[0]}", f"nsenter -t {host_pids[0]} -p true"):
        assert sh(client, attacker, attack)[0] != 0, attack
    assert os.path.exists(f"/proc/{host_pids[0]}")
    sleeper.signal(models.SIGNAL_KILL)


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def test_daemon_socket_depot_and_host_files_are_unreachable(client, garden_server, unprivileged, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    script = (f"ls {garden_server.socket_path} {garden_server.depot}; ln -s {secret} /tmp/link; cat /tmp/link; "
              f"cat /proc/1/root{secret}; cat /proc/self/root{secret}")
    code, out, err = sh(client, unprivileged, script)
    assert (code, out) == (1, ""), err
    assert err.count("No such file or directory") == 5, err
