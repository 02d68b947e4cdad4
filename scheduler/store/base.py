"""The store's interface: what the brain may ask of SQLite or PostgreSQL.

Writes of state are compare-and-set on `modification_index`: `cas_*` succeeds only when the row in the
store still has `before.modification_index`, and stores `after` with `before.modification_index + 1`.
Only `scheduler/transitions.py` calls the write methods; everything else reads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from scheduler.models import ActualLRP, CellPresence, DesiredLRP, Presence, Task, TaskState


class StoreError(Exception):
    """The store could not do what was asked (not a lost race: those return False)."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Store(ABC):
    """One scheduler database. Implementations: sqlite.SQLiteStore, postgres.PostgresStore."""

    # lifecycle
    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending schema migrations; re-encrypt rows if the active key changed."""

    @abstractmethod
    async def close(self) -> None: ...

    # desired LRPs
    @abstractmethod
    async def insert_desired(self, lrp: DesiredLRP) -> None:
        """Raise AlreadyExists when the process_guid is taken."""

    @abstractmethod
    async def get_desired(self, process_guid: str) -> DesiredLRP:
        """Raise NotFound."""

    @abstractmethod
    async def list_desired(self, domain: str | None = None) -> list[DesiredLRP]: ...

    @abstractmethod
    async def cas_desired(self, before: DesiredLRP, after: DesiredLRP) -> bool: ...

    @abstractmethod
    async def delete_desired(self, before: DesiredLRP) -> bool: ...

    # actual LRPs, keyed (process_guid, index, presence)
    @abstractmethod
    async def insert_actual(self, lrp: ActualLRP) -> bool:
        """False when a row with the same key exists."""

    @abstractmethod
    async def get_actual(self, process_guid: str, index: int,
                         presence: Presence = Presence.ORDINARY) -> ActualLRP | None: ...

    @abstractmethod
    async def list_actual(self, process_guid: str | None = None, cell_id: str | None = None) -> list[ActualLRP]: ...

    @abstractmethod
    async def cas_actual(self, before: ActualLRP, after: ActualLRP) -> bool: ...

    @abstractmethod
    async def delete_actual(self, before: ActualLRP) -> bool: ...

    # tasks
    @abstractmethod
    async def insert_task(self, task: Task) -> None:
        """Raise AlreadyExists when the task_guid is taken."""

    @abstractmethod
    async def get_task(self, task_guid: str) -> Task:
        """Raise NotFound."""

    @abstractmethod
    async def list_tasks(self, state: TaskState | None = None, cell_id: str | None = None,
                         domain: str | None = None) -> list[Task]: ...

    @abstractmethod
    async def cas_task(self, before: Task, after: Task) -> bool: ...

    @abstractmethod
    async def delete_task(self, before: Task) -> bool: ...

    # cell presences (Diego's Locket PRESENCE records), expire after their TTL
    @abstractmethod
    async def upsert_cell(self, cell: CellPresence, ttl_s: float) -> None: ...

    @abstractmethod
    async def list_cells(self) -> list[CellPresence]:
        """Only presences whose TTL has not run out."""

    @abstractmethod
    async def delete_cell(self, cell_id: str) -> None: ...

    # locks (Diego's Locket LOCK records): the active-brain lease
    @abstractmethod
    async def acquire_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or refresh the lock; False while another owner holds an unexpired one."""

    @abstractmethod
    async def release_lock(self, name: str, owner: str) -> None: ...

    # domains: destructive convergence only for fresh domains (§1.4)
    @abstractmethod
    async def upsert_domain(self, domain: str, ttl_s: float) -> None:
        """ttl_s 0 means it never expires."""

    @abstractmethod
    async def fresh_domains(self) -> set[str]:
        """Domains whose TTL has not run out (expired ones are pruned)."""
