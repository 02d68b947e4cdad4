"""The depot: one directory per container holding its state file and its /etc/hosts and resolv.conf."""

from __future__ import annotations

import json
import os
import shutil

STATE = "state.json"
PROCESSES_DIR = "processes"  # one socket per running process, for a restarted daemon to re-attach


class Depot:
    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)

    def path(self, handle: str) -> str:
        return os.path.join(self.root, handle)

    def create(self, handle: str) -> str:
        """Make the container's directory (with etc/); raises FileExistsError."""
        path = self.path(handle)
        os.mkdir(path, 0o700)
        os.mkdir(os.path.join(path, "etc"), 0o755)
        os.mkdir(os.path.join(path, PROCESSES_DIR), 0o700)
        return path

    def save(self, handle: str, state: dict) -> None:
        """Write the state atomically: a reader sees the old file or the new one, never half of one."""
        path = os.path.join(self.path(handle), STATE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, path)

    def load_all(self) -> tuple[dict[str, dict], list[str]]:
        """(states by handle, handles of directories without a readable state: half-created)."""
        states, broken = {}, []
        for handle in sorted(os.listdir(self.root)):
            try:
                with open(os.path.join(self.path(handle), STATE)) as f:
                    states[handle] = json.load(f)
            except (OSError, ValueError):
                broken.append(handle)
        return states, broken

    def remove(self, handle: str) -> None:
        shutil.rmtree(self.path(handle), ignore_errors=True)
