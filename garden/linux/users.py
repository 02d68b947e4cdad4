"""Resolve a Garden `user` string ("", "name", "uid", "uid:gid", "name:group") against a rootfs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field


class UnknownUserError(LookupError):
    pass


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: str
    groups: list[int] = field(default_factory=list)


def _entries(path: str) -> list[list[str]]:
    """The colon-separated lines of a regular file (the container owns it: a FIFO or device reads as empty)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with open(fd, encoding="utf-8", errors="replace") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]


def _group_id(group: str, groups: list[list[str]]) -> int:
    if group.isdigit():
        return int(group)
    for entry in groups:
        if len(entry) >= 3 and entry[0] == group:
            return int(entry[2])
    raise UnknownUserError(f"unable to find group {group}")


def resolve(spec: str, root: str = "/") -> User:
    """Look `spec` up in `<root>/etc/passwd` and `<root>/etc/group` (empty spec = root)."""
    root = root.rstrip("/")
    passwd = _entries(f"{root}/etc/passwd")
    groups = _entries(f"{root}/etc/group")
    name_part, _, group_part = (spec or "root").partition(":")
    user = None
    for entry in passwd:
        if len(entry) >= 6 and (entry[0] == name_part or (name_part.isdigit() and entry[2] == name_part)):
            user = User(name=entry[0], uid=int(entry[2]), gid=int(entry[3]), home=entry[5] or "/")
            break
    if user is None:
        if not name_part.isdigit():
            if name_part == "root":
                user = User(name="root", uid=0, gid=0, home="/root")
            else:
                raise UnknownUserError(f"unable to find user {name_part}: no matching entries in passwd file")
        else:
            user = User(name=name_part, uid=int(name_part), gid=0, home="/")
    if group_part:
        user.gid = _group_id(group_part, groups)
    # supplementary groups: only the /etc/group memberships, as Guardian does (the primary gid is not added)
    user.groups = sorted({int(e[2]) for e in groups if len(e) >= 4 and user.name in e[3].split(",") and e[2].isdigit()})
    return user
