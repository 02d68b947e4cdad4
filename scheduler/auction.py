"""Placement: Diego's auction (`../shared/spec/scheduler.md` §2) as a pure function — no I/O, no clock.

    result = run_auction(cells, lrps, tasks, AuctionConfig())

- `cells`: one `CellState` per cell that answered GET /state (`CellState.from_rep_state(answer)` builds one).
- `lrps`: `LRPStart` per instance to place (`LRPStart.of(desired, index)`); `tasks`: `TaskStart` per task
  (`TaskStart.of(task)`). The DesiredLRP / Task rides along and comes back in the result.
- `result.works[cell_id]` is the `Work` to POST to that cell's /work (`work.to_json()` is the body);
  `result.failed_lrps` / `result.failed_tasks` are `Failure(start, error)` with Diego's placement error
  texts (`PLACEMENT_TAG_MISMATCH`-style messages, "insufficient resources: memory", …).

The auction follows Diego exactly: dedupe by process_guid.index and task_guid; index-0 LRPs first, then
tasks, then the other LRPs, each by memory descending; placement tags R ⊆ D ⊆ R ∪ O; the score
(lower wins, strict `<`)

    mean used fraction of (memory, disk, containers) after placement + starting × starting_container_weight
    + 1000 × instances of the same app on the cell (tasks: 1000 × tasks on the cell)
    + normalised cell index × bin_pack_first_fit_weight (LRPs only)

with LRPs spread over zones (least-populated zone first, equal zones merged) and the in-flight start
limit. Every placement updates its cell (available resources, starting count, per-app counts), so the
next one sees it. Ties go to the cell given first. The input `CellState`s are not modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scheduler.models import DesiredLRP, Resources, Task

ERROR_CELL_COMMUNICATION = "unable to communicate to compatible cells"
ERROR_INFLIGHT_LIMIT = "waiting to start instance: reached in-flight start limit"
LOCALITY_OFFSET = 1000


@dataclass
class AuctionConfig:
    """The auctioneer's knobs, with Diego's defaults (0 = no in-flight limit)."""

    starting_container_weight: float = 0.25
    bin_pack_first_fit_weight: float = 0.0
    starting_container_count_maximum: int = 0


@dataclass
class CellState:
    """What the auction knows about one cell (the rep's /state answer).

    lrp_counts: instances per process_guid already on the cell; task_count: tasks on it; starting: containers
    still starting (Diego's StartingContainerCount); index: the cell's order for bin-packing (Diego's BOSH
    index, normalised per zone when bin_pack_first_fit_weight > 0).
    """

    cell_id: str
    total: Resources
    available: Resources
    zone: str = "z1"
    starting: int = 0
    lrp_counts: dict[str, int] = field(default_factory=dict)
    task_count: int = 0
    placement_tags: list[str] = field(default_factory=list)
    optional_placement_tags: list[str] = field(default_factory=list)
    index: int = 0

    @classmethod
    def from_rep_state(cls, state: dict[str, Any], index: int = 0) -> CellState:
        """Build from a rep's GET /state JSON (scheduler/API.md)."""
        counts: dict[str, int] = {}
        for lrp in state.get("lrps", []):
            counts[lrp["process_guid"]] = counts.get(lrp["process_guid"], 0) + 1
        return cls(
            cell_id=state["cell_id"],
            total=Resources.from_json(state["total"]),
            available=Resources.from_json(state["available"]),
            zone=state.get("zone", "z1"),
            starting=state.get("starting", 0),
            lrp_counts=counts,
            task_count=len(state.get("tasks", [])),
            placement_tags=list(state.get("placement_tags", [])),
            optional_placement_tags=list(state.get("optional_placement_tags", [])),
            index=index,
        )


@dataclass
class LRPStart:
    """One LRP instance to place; `desired` (usually the DesiredLRP) comes back untouched in the result."""

    process_guid: str
    index: int
    memory_mb: int
    disk_mb: int = 0
    placement_tags: list[str] = field(default_factory=list)
    desired: DesiredLRP | None = None

    @classmethod
    def of(cls, desired: DesiredLRP, index: int) -> LRPStart:
        return cls(desired.process_guid, index, desired.memory_mb, desired.disk_mb, list(desired.placement_tags),
                   desired)

    @property
    def identifier(self) -> str:
        return f"{self.process_guid}.{self.index}"


@dataclass
class TaskStart:
    """One task to place; `task` comes back untouched in the result."""

    task_guid: str
    memory_mb: int
    disk_mb: int = 0
    placement_tags: list[str] = field(default_factory=list)
    task: Task | None = None

    @classmethod
    def of(cls, task: Task) -> TaskStart:
        return cls(task.task_guid, task.memory_mb, task.disk_mb, list(task.placement_tags), task)

    @property
    def identifier(self) -> str:
        return self.task_guid


@dataclass
class Work:
    """What one cell won, in placement order: the body of its POST /work."""

    lrps: list[LRPStart] = field(default_factory=list)
    tasks: list[TaskStart] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The rep's /work body: {"lrps": [{"desired": DesiredLRP, "index": i}], "tasks": [Task]}."""
        return {
            "lrps": [{"desired": s.desired.to_json() if s.desired else None, "index": s.index} for s in self.lrps],
            "tasks": [s.task.to_json() if s.task else None for s in self.tasks],
        }


@dataclass
class Failure:
    """A start that found no cell, with Diego's placement error text."""

    start: LRPStart | TaskStart
    error: str


@dataclass
class AuctionResult:
    works: dict[str, Work] = field(default_factory=dict)  # cell_id -> what it won (only cells that won something)
    failed_lrps: list[Failure] = field(default_factory=list)
    failed_tasks: list[Failure] = field(default_factory=list)

    def winner(self, start: LRPStart | TaskStart) -> str | None:
        """The cell a start was placed on (None if it failed); a linear search, for tests and tools."""
        for cell_id, work in self.works.items():
            if any(s is start for s in work.lrps) or any(s is start for s in work.tasks):
                return cell_id
        return None


def run_auction(cells: list[CellState], lrps: list[LRPStart], tasks: list[TaskStart],
                config: AuctionConfig | None = None) -> AuctionResult:
    """Place every start on a cell (or fail it with Diego's error); see the module docstring."""
    raise NotImplementedError
