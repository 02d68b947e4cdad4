"""Scheduler benchmark (run: `.venv/bin/python -m bench.scheduler`).

Auction: scheduler.auction.run_auction on simulated cells like the spec's naive-port measurement (§2.9):
32 GiB / 64 GiB / 250 containers each, 3 zones, 256 MB / 256 MB instances, a mix of apps with 1, 10 and 100
instances. The reference is that naive Python port: 4.3 ms per placement at 1 000 cells on this class of
2-core machine, linear in the cells it scores (so 0.43 ms at 100). Issue target: 10 000 instances over 100
cells in ≤ 1 s.
Each measurement is one function returning a Row; main() prints them as a table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.auction import AuctionConfig, CellState, LRPStart, run_auction
from scheduler.models import Resources

NAIVE_AUCTION_S_PER_PLACEMENT = 4.3e-3  # spec §2.9: a naive Python port at 1 000 cells
CELL_TOTAL = Resources(memory_mb=32 * 1024, disk_mb=64 * 1024, containers=250)
INSTANCE_MB = 256


@dataclass
class Row:
    what: str
    items: int  # placements, actual LRPs, … what "per item" counts
    seconds: float  # median over the rounds
    reference_s_per_item: float | None = None  # the figure to compare with, if any
    reference: str = ""

    def cells(self) -> list[str]:
        per_item = self.seconds / self.items
        ratio = f"{self.reference_s_per_item / per_item:,.0f}x faster than {self.reference}" \
            if self.reference_s_per_item else ""
        return [self.what, f"{self.items:,}", f"{self.seconds * 1e3:,.1f}", f"{per_item * 1e6:,.1f}", ratio]


def median_seconds(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def simulated_cells(count: int, preloaded_apps: int = 0) -> list[CellState]:
    """Empty cells over 3 zones; preloaded_apps single instances (256 MB) already on each one."""
    cells = []
    for i in range(count):
        used = preloaded_apps * INSTANCE_MB
        available = Resources(CELL_TOTAL.memory_mb - used, CELL_TOTAL.disk_mb - used,
                              CELL_TOTAL.containers - preloaded_apps)
        counts = {f"old-{i}-{k}": 1 for k in range(preloaded_apps)}
        cells.append(CellState(f"cell-{i}", CELL_TOTAL, available, zone=f"z{i % 3}", lrp_counts=counts, index=i))
    return cells


def app_mix(instances: int) -> list[LRPStart]:
    """A quarter single-instance apps, a quarter in 10-instance apps, half in 100-instance apps."""
    starts = []
    for size, share in ((1, 4), (10, 4), (100, 2)):
        for n in range(instances // share):
            starts.append(LRPStart(f"app{size}-{n // size}", n % size, INSTANCE_MB, INSTANCE_MB))
    return starts


def auction_row(what: str, cells: list[CellState], starts: list[LRPStart], rounds: int) -> Row:
    result = run_auction(cells, starts, [], AuctionConfig())
    if result.failed_lrps:
        raise RuntimeError(f"{what}: {len(result.failed_lrps)} starts failed: {result.failed_lrps[0].error}")
    seconds = median_seconds(lambda: run_auction(cells, starts, [], AuctionConfig()), rounds)
    naive = NAIVE_AUCTION_S_PER_PLACEMENT * len(cells) / 1000  # the naive loop scores every cell
    return Row(what, len(starts), seconds, naive, f"naive port ({naive * 1e3:.2f} ms/placement)")


def auction_10000_over_100_cells(rounds: int) -> Row:
    return auction_row("auction: 10 000 instances, 100 cells", simulated_cells(100), app_mix(10_000), rounds)


def auction_5000_over_1000_cells(rounds: int) -> Row:
    return auction_row("auction: 5 000 instances, 1 000 cells", simulated_cells(1000), app_mix(5_000), rounds)


def auction_5000_over_1000_half_full_cells(rounds: int) -> Row:
    return auction_row("auction: 5 000 more, 1 000 half-full cells", simulated_cells(1000, preloaded_apps=60),
                       app_mix(5_000), rounds)


MEASUREMENTS: list[Callable[[int], Row]] = [
    auction_10000_over_100_cells,
    auction_5000_over_1000_cells,
    auction_5000_over_1000_half_full_cells,
]


def print_table(rows: list[Row]) -> None:
    header = ["measurement", "items", "total ms", "µs/item", "vs reference"]
    table = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(w) if i in (0, 4) else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement (the median is shown)")
    args = parser.parse_args()
    print(f"\nScheduler (median of {args.rounds} runs)")
    print_table([measure(args.rounds) for measure in MEASUREMENTS])


if __name__ == "__main__":
    main()
