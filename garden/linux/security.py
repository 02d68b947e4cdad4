"""Capabilities, seccomp and no_new_privs for a container's processes and its pid 1 (Garden's sets).

`confine` is applied by the launcher to itself right before exec/posix_spawn, so the program it starts
inherits it: the bounding set is dropped to the container's set, inheritable = that set and effective
= permitted = the same (the launcher keeps CAP_SETUID/SETGID to start the process as its user).
Exec then gives root the set as effective and permitted, and any other user no effective caps.
"""

from __future__ import annotations

import ctypes
import functools

from kernel import syscalls as sc

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP = \
    0, 1, 3, 4, 5, 6, 7, 8
CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_SYS_CHROOT, CAP_SYS_ADMIN, CAP_MKNOD, CAP_AUDIT_WRITE, CAP_SETFCAP = \
    10, 13, 18, 21, 27, 29, 31
UNPRIVILEGED_CAPS = frozenset({
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW, CAP_SETGID, CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
})
NON_ROOT_PRIVILEGED_CAPS = UNPRIVILEGED_CAPS | {CAP_SYS_ADMIN}
PRIVILEGED_CAPS = frozenset(range(38))  # CAP_CHOWN … CAP_AUDIT_READ, Garden's privileged list

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc.capget.argtypes = _libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]


@functools.cache
def _not_in(caps: frozenset[int]) -> tuple[int, ...]:
    """The capabilities this kernel knows that are not in `caps` (read once per set, in the helper or a fork)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return tuple(cap for cap in range(int(f.read()) + 1) if cap not in caps)


def warm() -> None:
    """Compute what confine needs once (drop lists, ctypes function lookups), so forks inherit it."""
    for caps in (UNPRIVILEGED_CAPS, NON_ROOT_PRIVILEGED_CAPS, PRIVILEGED_CAPS):
        _not_in(caps)
    _permitted()


def capability_set(privileged: bool, uid: int) -> frozenset[int]:
    """Bounding/inheritable set of a process: Garden's unprivileged, privileged or privileged non-root set."""
    if not privileged:
        return UNPRIVILEGED_CAPS
    return PRIVILEGED_CAPS if uid == 0 else NON_ROOT_PRIVILEGED_CAPS


def _permitted() -> int:
    """This process's permitted set as a 64-bit mask."""
    data = (_CapData * 2)()
    if _libc.capget(_CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), data) < 0:
        err = ctypes.get_errno()
        raise OSError(err, "capget")
    return data[0].permitted | data[1].permitted << 32


def _set_caps(effective: int, permitted: int, inheritable: int) -> None:
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    if _libc.capset(_CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), data) < 0:
        err = ctypes.get_errno()
        raise OSError(err, "capset")


def load_seccomp(bpf: bytes) -> None:
    """Install a raw BPF seccomp filter on this thread (needs CAP_SYS_ADMIN here or no_new_privs)."""
    buffer = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    sc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def confine(caps: frozenset[int], seccomp_bpf: bytes | None, no_new_privs: bool) -> None:
    """no_new_privs if asked, the seccomp filter (while CAP_SYS_ADMIN is still held), then only `caps`.

    For this process and what it execs or spawns next.
    """
    if no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_bpf:
        load_seccomp(seccomp_bpf)
    for cap in _not_in(caps):
        sc.prctl(sc.PR_CAPBSET_DROP, cap)
    granted = _permitted() & sum(1 << cap for cap in caps)
    _set_caps(granted, granted, granted)
