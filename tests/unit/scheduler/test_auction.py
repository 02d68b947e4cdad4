"""scheduler/auction.py: Diego's auction (spec §2) — the Go simulation suite's scenarios (§2.9), ordering,
dedupe, placement tags, error texts and precedence, the in-flight limit and hand-computed scores."""

from __future__ import annotations

import random

import pytest

from scheduler.auction import (
    ERROR_CELL_COMMUNICATION,
    ERROR_INFLIGHT_LIMIT,
    AuctionConfig,
    AuctionResult,
    CellState,
    LRPStart,
    TaskStart,
    placement_tag_error,
    run_auction,
    score,
    tags_match,
)
from scheduler.models import DesiredLRP, Resources, Task

# --- helpers -------------------------------------------------------------------------------------------------


def cell(cell_id: str, zone: str = "z1", total: tuple[int, int, int] = (100, 100, 100),
         used: tuple[int, int, int] | None = None, apps: dict[str, int] | None = None, **kw) -> CellState:
    """A cell with `total` (memory, disk, containers) and `used` of it taken (default: 1 MB/1 MB/1 per app
    instance, like the Go simulation's pre-filled reps)."""
    apps = apps or {}
    if used is None:
        n = sum(apps.values())
        used = (n, n, n)
    available = Resources(*(t - u for t, u in zip(total, used, strict=True)))
    return CellState(cell_id, Resources(*total), available, zone=zone, lrp_counts=dict(apps), **kw)


def sim_cells(n: int, prefill: dict[int, int] | None = None) -> list[CellState]:
    """The Go simulation's reps: 100 MB / 100 MB / 100 containers, alternating between two zones;
    prefill[i] unique 1 MB instances already on cell i."""
    prefill = prefill or {}
    return [cell(f"cell-{i}", zone=f"Z{i % 2}", apps={f"pre-{i}-{k}": 1 for k in range(prefill.get(i, 0))},
                 index=i) for i in range(n)]


def unique_apps(n: int, memory_mb: int = 1) -> list[LRPStart]:
    return [LRPStart(f"app-{i}", 0, memory_mb, 1) for i in range(n)]


def instances(guid: str, n: int, memory_mb: int = 1) -> list[LRPStart]:
    return [LRPStart(guid, i, memory_mb, 1) for i in range(n)]


def placed(result: AuctionResult, cells: list[CellState]) -> list[int]:
    """Instances won per cell, in the cells' order."""
    return [len(result.works[c.cell_id].lrps) if c.cell_id in result.works else 0 for c in cells]


def errors(result: AuctionResult) -> dict[str, str]:
    return {f.start.identifier: f.error for f in result.failed_lrps + result.failed_tasks}


# --- the Go simulation suite (§2.9) ------------------------------------------------------------------------


@pytest.mark.parametrize("napps,ncells", [(8, 4), (40, 10), (200, 20), (800, 40)])
def test_small_cold_starts_spread_evenly(napps, ncells):
    cells = sim_cells(ncells)
    result = run_auction(cells, unique_apps(napps), [])
    assert placed(result, cells) == [napps // ncells] * ncells
    assert not result.failed_lrps


@pytest.mark.parametrize("nempty,napps", [(5, 500), (1, 100)])
def test_imbalanced_deploy_does_not_flood_the_empty_cells(nempty, napps):
    cells = sim_cells(100, {i: 50 for i in range(100 - nempty)})
    result = run_auction(cells, unique_apps(napps), [])
    counts = placed(result, cells)
    mean = napps // 100
    assert all(mean - 1 <= c <= mean + 1 for c in counts), counts
    assert sum(counts) == napps
    if nempty == 5:
        assert counts[-5:] == [6] * 5  # the independent re-run's outcome (§2.9)


@pytest.mark.parametrize("ncells,ninstances", [(10, 80), (30, 200), (100, 400)])
def test_single_app_demo_on_busy_cells(ncells, ninstances):
    rng = random.Random(ncells)
    cells = sim_cells(ncells, {i: rng.randint(78, 80) for i in range(ncells)})
    result = run_auction(cells, instances("red", ninstances), [])
    counts = placed(result, cells)
    mean = ninstances / ncells
    assert all(mean - 1 <= c <= mean + 1 for c in counts), counts
    assert not result.failed_lrps


def test_az_distribution_splits_one_app_between_zones_even_when_the_lone_z1_cell_is_busy():
    cells = [cell("z1-cell", "Z1", apps={f"pre-{k}": 1 for k in range(50)}), cell("z2-a", "Z2"), cell("z2-b", "Z2")]
    result = run_auction(cells, instances("green", 40), [])
    assert placed(result, cells) == [20, 10, 10]


def test_low_memory_51_winners_31_losers():
    cells = sim_cells(1)
    red = [LRPStart("red", 0, 50, 1), LRPStart("red", 1, 50, 1)]
    result = run_auction(cells, unique_apps(80) + red, [])
    won = result.works["cell-0"].lrps
    assert (len(won), len(result.failed_lrps)) == (51, 31)
    assert red[0] in won
    assert errors(result)["red.1"] == "insufficient resources: memory"
    assert set(errors(result).values()) == {"insufficient resources: memory"}


@pytest.mark.parametrize("weight,expected", [(0.25, [6, 6, 5, 5, 4, 4, 3, 3, 2, 2])])
def test_bin_pack_first_fit_fills_low_index_cells_first(weight, expected):
    cells = sim_cells(10)
    result = run_auction(cells, unique_apps(40), [], AuctionConfig(bin_pack_first_fit_weight=weight))
    assert placed(result, cells) == expected


@pytest.mark.parametrize("weight", [0.25, 0.5, 0.75])
def test_bin_pack_counts_fall_with_the_index_inside_each_zone_and_zones_stay_balanced(weight):
    cells = sim_cells(10)
    counts = placed(run_auction(cells, unique_apps(40), [], AuctionConfig(bin_pack_first_fit_weight=weight)), cells)
    for zone in (counts[0::2], counts[1::2]):
        assert zone == sorted(zone, reverse=True)
    assert abs(sum(counts[0::2]) - sum(counts[1::2])) <= 1


def test_bin_pack_index_is_normalised_per_zone_by_the_cells_own_index():
    # z1's indices 7 and 3 become 1 and 0; with a big weight the cell with the lower own index wins
    cells = [cell("high", index=7), cell("low", index=3)]
    result = run_auction(cells, unique_apps(1), [], AuctionConfig(bin_pack_first_fit_weight=10))
    assert result.winner_of("app-0.0") == "low"


# --- ordering and dedupe (§2.1) ----------------------------------------------------------------------------


def test_order_is_index_0_lrps_then_tasks_then_other_lrps_each_by_memory_descending():
    big = cell("big", total=(10_000, 10_000, 100))
    lrps = [LRPStart("a", 2, 10), LRPStart("b", 1, 30), LRPStart("c", 0, 10), LRPStart("d", 0, 50),
            LRPStart("e", 1, 40)]
    tasks = [TaskStart("t-small", 5), TaskStart("t-big", 20)]
    work = run_auction([big], lrps, tasks).works["big"]
    assert [s.identifier for s in work.lrps] == ["d.0", "c.0", "e.1", "b.1", "a.2"]
    assert [s.identifier for s in work.tasks] == ["t-big", "t-small"]


def test_tasks_go_between_index_0_and_the_other_instances():
    # room for two 40 MB starts: the index-0 LRP and the task win, the index-1 LRP loses
    small = cell("small", total=(80, 100, 10))
    result = run_auction([small], [LRPStart("a", 1, 40), LRPStart("b", 0, 40)], [TaskStart("t", 40)])
    assert [s.identifier for s in result.works["small"].lrps] == ["b.0"]
    assert [s.identifier for s in result.works["small"].tasks] == ["t"]
    assert errors(result) == {"a.1": "insufficient resources: memory"}


def test_duplicates_are_auctioned_once_and_the_first_request_is_kept():
    first, again = LRPStart("a", 0, 10), LRPStart("a", 0, 10)
    task, task_again = TaskStart("t", 10), TaskStart("t", 10)
    result = run_auction([cell("c1"), cell("c2")], [first, again, LRPStart("a", 1, 10)], [task, task_again])
    won = [s for w in result.works.values() for s in w.lrps]
    tasks = [s for w in result.works.values() for s in w.tasks]
    assert len(won) == 2 and any(s is first for s in won) and not any(s is again for s in won)
    assert len(tasks) == 1 and tasks[0] is task
    assert not result.failed_lrps and not result.failed_tasks


# --- placement tags (§2.2) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("required,optional,desired,matches", [
    ([], [], [], True),
    ([], [], ["a"], False),
    (["a"], [], [], False),
    (["a"], [], ["a"], True),
    (["a"], [], ["a", "b"], False),
    (["a"], ["b"], ["a"], True),
    (["a"], ["b"], ["a", "b"], True),
    (["a"], ["b"], ["b"], False),
    (["a"], ["b"], ["a", "c"], False),
    ([], ["b"], [], True),
    ([], ["b"], ["b"], True),
    (["a", "b"], [], ["b", "a"], True),
])
def test_placement_tags_r_within_d_within_r_and_o(required, optional, desired, matches):
    assert tags_match(frozenset(required), frozenset(optional), frozenset(desired)) is matches
    tagged = cell("tagged", placement_tags=required, optional_placement_tags=optional)
    result = run_auction([tagged], [LRPStart("app", 0, 1, placement_tags=desired)],
                         [TaskStart("task", 1, placement_tags=desired)])
    assert (result.winner_of("app.0"), result.winner_of("task")) == (("tagged",) * 2 if matches else (None, None))
    if not matches:
        assert set(errors(result).values()) == {placement_tag_error(desired)}


@pytest.mark.parametrize("tags,text", [
    ([], "found no compatible cell with no placement tags"),
    (["gpu"], 'found no compatible cell with placement tag "gpu"'),
    (["gpu", "ssd", "eu"], 'found no compatible cell with placement tags "gpu", "ssd" and "eu"'),
])
def test_placement_tag_error_texts(tags, text):
    assert placement_tag_error(tags) == text


def test_tagged_lrp_goes_only_to_matching_cells_even_when_they_are_busier():
    cells = [cell("plain"), cell("gpu", used=(90, 0, 0), placement_tags=["gpu"])]
    result = run_auction(cells, [LRPStart("a", 0, 5, placement_tags=["gpu"]), LRPStart("b", 0, 5)], [])
    assert (result.winner_of("a.0"), result.winner_of("b.0")) == ("gpu", "plain")


# --- errors and their precedence (§2.2, §2.5, §2.6) --------------------------------------------------------


def test_no_cells_fails_everything_with_unable_to_communicate():
    result = run_auction([], [LRPStart("a", 0, 1)], [TaskStart("t", 1)])
    assert errors(result) == {"a.0": ERROR_CELL_COMMUNICATION, "t": ERROR_CELL_COMMUNICATION}
    assert ERROR_CELL_COMMUNICATION == "unable to communicate to compatible cells"


def test_tag_mismatch_wins_over_insufficient_resources():
    full = cell("full", used=(100, 100, 100))
    assert errors(run_auction([full], [LRPStart("a", 0, 1, placement_tags=["x"])], [])) == {
        "a.0": 'found no compatible cell with placement tag "x"'}


@pytest.mark.parametrize("cells,expected", [
    ([("c1", (95, 0, 0)), ("c2", (95, 0, 0))], "insufficient resources: memory"),
    ([("c1", (95, 95, 0)), ("c2", (95, 0, 0))], "insufficient resources: memory"),
    ([("c1", (95, 95, 0)), ("c2", (95, 95, 0))], "insufficient resources: disk, memory"),
    ([("c1", (95, 0, 0)), ("c2", (0, 95, 0))], "insufficient resources"),
    ([("c1", (0, 0, 100)), ("c2", (0, 0, 100))], "insufficient resources: containers"),
    ([("c1", (100, 100, 100))], "insufficient resources: containers, disk, memory"),
])
def test_insufficient_resources_names_only_the_problems_every_cell_has(cells, expected):
    states = [cell(cell_id, zone=f"z{i}", used=used) for i, (cell_id, used) in enumerate(cells)]
    result = run_auction(states, [LRPStart("a", 0, 10, 10)], [TaskStart("t", 10, 10)])
    assert errors(result) == {"a.0": expected, "t": expected}


def test_in_flight_limit_counts_starting_containers_and_this_batch():
    cells = [cell("c1", starting=1), cell("c2", starting=1)]
    config = AuctionConfig(starting_container_count_maximum=4)
    result = run_auction(cells, [LRPStart("a", 0, 10), LRPStart("b", 0, 5), LRPStart("a", 1, 10)],
                         [TaskStart("t", 1)], config)
    assert sorted(s.identifier for w in result.works.values() for s in w.lrps) == ["a.0", "b.0"]
    assert errors(result) == {"t": ERROR_INFLIGHT_LIMIT, "a.1": ERROR_INFLIGHT_LIMIT}
    assert ERROR_INFLIGHT_LIMIT == "waiting to start instance: reached in-flight start limit"


def test_in_flight_limit_comes_before_the_tag_check_and_zero_means_no_limit():
    busy = cell("busy", starting=50)
    assert errors(run_auction([busy], [LRPStart("a", 0, 1, placement_tags=["x"])], [],
                              AuctionConfig(starting_container_count_maximum=50))) == {"a.0": ERROR_INFLIGHT_LIMIT}
    assert not run_auction([busy], instances("a", 10), [], AuctionConfig()).failed_lrps


# --- scoring (§2.3) ----------------------------------------------------------------------------------------


def test_score_formula_on_a_hand_computed_case():
    c = cell("c", total=(100, 200, 10), used=(50, 100, 5), starting=2)
    # used after: memory 1 - 40/100, disk 1 - 80/200, containers 1 - 4/10 → 0.6 each; mean 0.6
    assert score(c, 10, 20, 0, AuctionConfig(starting_container_weight=0)) == pytest.approx(0.6)
    assert score(c, 10, 20, 0, AuctionConfig()) == pytest.approx(0.6 + 2 * 0.25)
    assert score(c, 10, 20, 1, AuctionConfig()) == pytest.approx(1001.1)
    assert score(c, 10, 20, 1, AuctionConfig(bin_pack_first_fit_weight=0.5), bin_index=3) == pytest.approx(1002.6)
    assert score(cell("empty"), 0, 0, 0, AuctionConfig()) == pytest.approx(0.01 / 3)  # a container is used


def test_least_used_cell_wins_and_memory_disk_containers_weigh_the_same():
    cells = [cell("more-memory-used", used=(30, 0, 0)), cell("more-disk-used", used=(0, 20, 0))]
    assert run_auction(cells, unique_apps(1), []).winner_of("app-0.0") == "more-disk-used"


def test_starting_containers_weigh_a_quarter_each():
    # 'fresh' is 20 % more used but has no starts; 'starting' has one start (0.25)
    cells = [cell("starting", starting=1), cell("fresh", used=(20, 20, 20))]
    assert run_auction(cells, unique_apps(1), []).winner_of("app-0.0") == "fresh"
    cells = [cell("starting", starting=1), cell("fresh", used=(30, 30, 30))]
    assert run_auction(cells, unique_apps(1), []).winner_of("app-0.0") == "starting"


def test_same_app_on_a_cell_costs_1000_so_a_busy_cell_without_it_wins():
    cells = [cell("has-app", apps={"web": 1}), cell("busy", used=(90, 90, 90), starting=3)]
    assert run_auction(cells, [LRPStart("web", 1, 5)], []).winner_of("web.1") == "busy"


def test_tasks_cost_1000_per_task_on_the_cell_and_ignore_bin_packing_and_zones():
    cells = [cell("has-task", task_count=1), cell("busy", zone="z2", used=(90, 90, 90), index=1)]
    config = AuctionConfig(bin_pack_first_fit_weight=100)
    assert run_auction(cells, [], [TaskStart("t", 5)], config).winner_of("t") == "busy"
    result = run_auction([cell("a", index=0), cell("b", index=1)], [], [TaskStart("t1", 1), TaskStart("t2", 1)],
                         config)
    assert sorted(result.works) == ["a", "b"]


def test_each_placement_updates_the_cell_and_the_input_is_untouched():
    cells = [cell("c1"), cell("c2")]
    result = run_auction(cells, instances("web", 4) + unique_apps(2, memory_mb=10), [TaskStart("t", 10)])
    assert placed(result, cells) == [3, 3]
    assert sorted(s.identifier for s in result.works["c1"].lrps + result.works["c2"].lrps)[:4] == [
        "app-0.0", "app-1.0", "web.0", "web.1"]
    assert cells[0].available == Resources(100, 100, 100) and cells[0].lrp_counts == {} and cells[0].starting == 0


# --- zones (§2.4) -------------------------------------------------------------------------------------------


def test_instances_go_to_the_least_populated_zone_and_spill_when_it_is_full():
    cells = [cell("z1-a", "z1", apps={"web": 2}), cell("z2-full", "z2", used=(100, 100, 100)),
             cell("z3-a", "z3", apps={"web": 1})]
    result = run_auction(cells, [LRPStart("web", 5, 10)], [])
    assert result.winner_of("web.5") == "z3-a"  # z2 has none of web but no room; z3 has fewer than z1


def test_equally_populated_zones_are_scanned_together():
    cells = [cell("z1-busy", "z1", used=(50, 50, 50)), cell("z2-idle", "z2")]
    assert run_auction(cells, unique_apps(1), []).winner_of("app-0.0") == "z2-idle"


# --- the auctioneer's side: building cells, /work bodies ---------------------------------------------------


def test_cell_state_from_rep_state_and_work_body():
    state = {"cell_id": "cell-7", "zone": "z2", "address": "127.0.0.1",
             "total": {"memory_mb": 1000, "disk_mb": 2000, "containers": 250},
             "available": {"memory_mb": 800, "disk_mb": 1900, "containers": 247}, "starting": 1,
             "lrps": [{"process_guid": "web", "index": 0, "instance_guid": "i0", "state": "RUNNING"},
                      {"process_guid": "web", "index": 1, "instance_guid": "i1", "state": "CLAIMED"},
                      {"process_guid": "api", "index": 0, "instance_guid": "i2", "state": "RUNNING"}],
             "tasks": ["t1"], "placement_tags": ["gpu"], "optional_placement_tags": []}
    c = CellState.from_rep_state(state, index=4)
    assert (c.zone, c.starting, c.lrp_counts, c.task_count, c.index) == ("z2", 1, {"web": 2, "api": 1}, 1, 4)
    assert c.available == Resources(800, 1900, 247)

    desired = DesiredLRP("web", "cache:5050/busybox@sha256:" + "0" * 64, ["sleep", "1"], memory_mb=64,
                         placement_tags=["gpu"])
    task = Task("t2", "cache:5050/busybox@sha256:" + "0" * 64, ["true"], memory_mb=32, placement_tags=["gpu"])
    result = run_auction([c], [LRPStart.of(desired, 2)], [TaskStart.of(task)])
    body = result.works["cell-7"].to_json()
    assert body == {"lrps": [{"desired": desired.to_json(), "index": 2}], "tasks": [task.to_json()]}


def test_a_cell_listed_twice_is_refused():
    with pytest.raises(ValueError, match="listed twice"):
        run_auction([cell("c1"), cell("c1")], unique_apps(1), [])


# --- the ranked search against brute force ------------------------------------------------------------------


def random_cells(rng: random.Random) -> list[CellState]:
    cells = []
    for i in range(rng.randint(1, 12)):
        total = (rng.choice([100, 200]), rng.choice([50, 100]), rng.choice([5, 10, 20]))
        cells.append(cell(f"c{i}", zone=rng.choice(["z1", "z2", "z3"]), total=total,
                          used=tuple(rng.randint(0, t) for t in total), starting=rng.randint(0, 3),
                          apps={f"app{rng.randint(0, 3)}": rng.randint(1, 3) for _ in range(rng.randint(0, 2))},
                          task_count=rng.randint(0, 2), placement_tags=rng.choice([[], [], ["a"]]),
                          optional_placement_tags=rng.choice([[], ["b"]])))
    return cells


def brute_force_lrp_score(cells: list[CellState], start: LRPStart, config: AuctionConfig) -> float | None:
    """Diego's loop for one LRP: zones by the app's count, equal ones merged; every cell scored."""
    fits = [c for c in cells if tags_match(frozenset(c.placement_tags), frozenset(c.optional_placement_tags),
                                           frozenset(start.placement_tags))
            and c.available.memory_mb >= start.memory_mb and c.available.disk_mb >= start.disk_mb
            and c.available.containers >= 1]
    zone_count = {}
    for c in cells:
        zone_count[c.zone] = zone_count.get(c.zone, 0) + c.lrp_counts.get(start.process_guid, 0)
    for level in sorted({zone_count[c.zone] for c in fits}):
        scores = [score(c, start.memory_mb, start.disk_mb, c.lrp_counts.get(start.process_guid, 0), config)
                  for c in fits if zone_count[c.zone] == level]
        return min(scores)
    return None


@pytest.mark.parametrize("seed", range(200))
def test_the_winner_has_the_lowest_score_diego_would_compute(seed):
    rng = random.Random(seed)
    cells = random_cells(rng)
    config = AuctionConfig(starting_container_weight=rng.choice([0.25, 0.0, 1.0]))
    start = LRPStart(f"app{rng.randint(0, 4)}", 1, rng.choice([1, 10, 40]), rng.choice([0, 10, 30]),
                     rng.choice([[], ["a"], ["a", "b"]]))
    result = run_auction(cells, [start], [], config)
    expected = brute_force_lrp_score(cells, start, config)
    winner = result.winner_of(start.identifier)
    if expected is None:
        assert winner is None and result.failed_lrps
    else:
        won = next(c for c in cells if c.cell_id == winner)
        assert score(won, start.memory_mb, start.disk_mb, won.lrp_counts.get(start.process_guid, 0),
                     config) == pytest.approx(expected, abs=1e-9)


def apply(cells: list[CellState], cell_id: str, start: LRPStart | TaskStart) -> None:
    c = next(c for c in cells if c.cell_id == cell_id)
    c.available = Resources(c.available.memory_mb - start.memory_mb, c.available.disk_mb - start.disk_mb,
                            c.available.containers - 1)
    c.starting += 1
    if isinstance(start, LRPStart):
        c.lrp_counts[start.process_guid] = c.lrp_counts.get(start.process_guid, 0) + 1
    else:
        c.task_count += 1


@pytest.mark.parametrize("seed", range(100))
def test_a_batch_places_like_one_start_at_a_time(seed):
    rng = random.Random(seed)
    cells = random_cells(rng)
    config = AuctionConfig(bin_pack_first_fit_weight=rng.choice([0.0, 0.25]))
    lrps = [LRPStart(f"app{rng.randint(0, 5)}", rng.randint(0, 3), rng.choice([1, 5, 20]), rng.choice([0, 5]),
                     rng.choice([[], [], ["a"]])) for _ in range(rng.randint(1, 40))]
    tasks = [TaskStart(f"t{i}", rng.choice([0, 5, 20]), 1, rng.choice([[], ["a"]])) for i in range(rng.randint(0, 8))]
    batch = run_auction(cells, lrps, tasks, config)
    first: dict[str, LRPStart] = {}
    for s in lrps:
        first.setdefault(s.identifier, s)
    deduped = list(first.values())
    deduped.sort(key=lambda s: (s.index, -s.memory_mb))
    order = [s for s in deduped if s.index == 0] + sorted(tasks, key=lambda t: -t.memory_mb) + \
        [s for s in deduped if s.index != 0]
    for start in order:
        one = run_auction(cells, [start] if isinstance(start, LRPStart) else [],
                          [start] if isinstance(start, TaskStart) else [], config)
        winner = one.winner_of(start.identifier)
        assert winner == batch.winner_of(start.identifier), start
        if winner:
            apply(cells, winner, start)
        else:
            assert errors(one) == {start.identifier: errors(batch)[start.identifier]}
