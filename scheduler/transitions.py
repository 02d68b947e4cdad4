"""Every state change of the scheduler, each one compare-and-set on the store (nothing else writes state).

CONTRACT STUB written by the integrator: the signatures below are what the brain calls. The store
helper implements the bodies (and may add private helpers), keeping names and signatures.

Each method re-reads the row, checks the move with `models` (ActualLRP.allows / Task.allows), writes it
with `store.cas_*`, and on a lost race re-reads and retries a few times before raising TransitionError.
After each successful write it calls `publish(event_type, before, after)` (see API.md's event names;
before or after is None for created/removed). `clock()` gives the time (tests may pass their own).
Errors: models.InvalidInput (bad values), store.base.NotFound, store.base.AlreadyExists, TransitionError.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from scheduler.models import ActualLRP, DesiredLRP, NetInfo, Task
from scheduler.store.base import Store

Publish = Callable[[str, Any, Any], None]


def _ignore(_event: str, _before: Any, _after: Any) -> None:
    return None


class Transitions:
    """The brain's only way to change desired LRPs, actual LRPs and tasks."""

    def __init__(self, store: Store, publish: Publish = _ignore, clock: Callable[[], float] = time.time):
        self.store = store
        self.publish = publish
        self.clock = clock

    # desired LRPs
    async def desire_lrp(self, lrp: DesiredLRP) -> list[ActualLRP]:
        """Validate, insert the DesiredLRP and `instances` UNCLAIMED rows; return the rows to auction."""
        raise NotImplementedError

    async def update_desired(self, process_guid: str, instances: int | None = None,
                             annotation: str | None = None) -> tuple[DesiredLRP, list[ActualLRP], list[ActualLRP]]:
        """Change instances/annotation; return (desired, new UNCLAIMED rows to auction, rows to stop on cells).

        On scale-down, UNCLAIMED/CRASHED rows with index >= instances are deleted at once; CLAIMED/RUNNING
        ones are returned for the brain to stop through their rep (the rep then calls remove_actual).
        """
        raise NotImplementedError

    async def remove_desired(self, process_guid: str) -> list[ActualLRP]:
        """Delete the DesiredLRP; delete its UNCLAIMED/CRASHED rows; return CLAIMED/RUNNING rows to stop."""
        raise NotImplementedError

    # actual LRPs (called by reps through the brain, by the auctioneer and by the converger)
    async def claim_actual(self, process_guid: str, index: int, instance_guid: str, cell_id: str) -> ActualLRP:
        raise NotImplementedError

    async def start_actual(self, process_guid: str, index: int, instance_guid: str, cell_id: str,
                           net_info: NetInfo) -> ActualLRP:
        """→ RUNNING; clears placement_error. Also deletes a SUSPECT copy of the same index, if any."""
        raise NotImplementedError

    async def crash_actual(self, process_guid: str, index: int, instance_guid: str, cell_id: str,
                           reason: str) -> tuple[ActualLRP, bool]:
        """Apply the DesiredLRP's RestartPolicy; return (row, restart_now). restart_now: the row is
        UNCLAIMED again and must be auctioned; otherwise it stays CRASHED until restart_crashed.
        Emits actual_lrp_crashed as well as the change."""
        raise NotImplementedError

    async def remove_actual(self, process_guid: str, index: int, instance_guid: str, cell_id: str) -> None:
        """The rep stopped it on purpose: delete the row (convergence recreates it if still desired)."""
        raise NotImplementedError

    async def fail_placement(self, lrp: ActualLRP, error: str) -> ActualLRP:
        """The auction found no cell: stays UNCLAIMED with placement_error, since bumped."""
        raise NotImplementedError

    async def unclaim(self, lrp: ActualLRP) -> ActualLRP:
        """CLAIMED/RUNNING → UNCLAIMED without a cell (the rep reports its container is gone, or a
        commit to a cell was refused)."""
        raise NotImplementedError

    async def create_missing(self, desired: DesiredLRP, index: int) -> ActualLRP | None:
        """Insert an UNCLAIMED ORDINARY row for a missing index; None if one appeared meanwhile."""
        raise NotImplementedError

    async def restart_crashed(self, lrp: ActualLRP) -> ActualLRP:
        """CRASHED → UNCLAIMED once its backoff ran out (the converger checks the policy)."""
        raise NotImplementedError

    async def mark_suspect(self, lrp: ActualLRP) -> ActualLRP:
        """Its cell lost presence: the row becomes SUSPECT (kept, still routable) and a new UNCLAIMED
        ORDINARY row is inserted; return the new row to auction."""
        raise NotImplementedError

    async def delete_actual(self, lrp: ActualLRP) -> bool:
        """Delete a row that is no longer wanted (extra index, orphan, suspect whose replacement runs)."""
        raise NotImplementedError

    # tasks
    async def desire_task(self, task: Task) -> Task:
        raise NotImplementedError

    async def start_task(self, task_guid: str, cell_id: str) -> bool:
        """PENDING → RUNNING on cell_id; False (should not start) if it already runs on this cell."""
        raise NotImplementedError

    async def complete_task(self, task_guid: str, cell_id: str, failed: bool, failure_reason: str,
                            result: str) -> Task:
        raise NotImplementedError

    async def cancel_task(self, task_guid: str) -> Task:
        """PENDING/RUNNING → COMPLETED failed "task was cancelled" (the brain then cancels it on its cell)."""
        raise NotImplementedError

    async def fail_task(self, task_guid: str, reason: str) -> Task:
        raise NotImplementedError

    async def reject_task(self, task_guid: str, reason: str, max_retries: int = 3) -> Task:
        """The auction could not place it: rejection_count += 1, failed once the count before was >= max."""
        raise NotImplementedError

    async def resolving_task(self, task_guid: str) -> Task:
        raise NotImplementedError

    async def demote_resolving(self, task: Task) -> Task:
        raise NotImplementedError

    async def delete_task(self, task_guid: str) -> None:
        """Only COMPLETED or RESOLVING tasks."""
        raise NotImplementedError
