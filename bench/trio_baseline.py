"""bench/trio_baseline.py: Python Trio's figures on this machine, the
third column of the benchmark table.

Prints lines "TRIO <key>=<ns>" that the benchmarks read from the file
named by $BENCH_TRIO (`make bench` writes them to bench-trio.txt and
prints them); each is the twin of a C figure:

    TRIO checkpoint_ns=<n>     `await trio.lowlevel.checkpoint()` in a loop,
                               one task: per checkpoint
    TRIO spawn_join_ns=<n>     start N trivial tasks in a nursery and join
                               them: per task
    TRIO move_on_after_ns=<n>  `with trio.move_on_after(5): pass`: per block
    TRIO cancel_scope_ns=<n>   `with trio.CancelScope(): pass`: per block
    TRIO sleepers_ns=<n>       N tasks each sleeping a distinct duration on
                               a MockClock that autojumps (no real waiting),
                               minus the same tasks returning at once: per
                               task, one sleep and its wake

Each figure is the fastest of a few rounds. The sizes shrink when this
machine is slow, so that the whole run stays under about 15 s. Lines
starting with '#' are comments.
"""
import sys
import time

import trio
import trio.testing

ROUNDS = 3
BUDGET = 15.0   # seconds for everything


def timed(n, body):
    """Runs `body(n)` (an async function returning its own ns) in trio."""
    return trio.run(body, n)


async def checkpoints(n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await trio.lowlevel.checkpoint()
    return (time.perf_counter_ns() - t0) / n


async def spawn_join(n):
    async def trivial():
        pass

    t0 = time.perf_counter_ns()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(trivial)
    return (time.perf_counter_ns() - t0) / n


async def move_on_after(n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        with trio.move_on_after(5):
            pass
    return (time.perf_counter_ns() - t0) / n


async def cancel_scope(n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        with trio.CancelScope():
            pass
    return (time.perf_counter_ns() - t0) / n


def tasks_ns(n, sleep):
    """n tasks in a nursery, sleeping a distinct duration (a permutation of
    1..n us, as in bench/bench_timer.c) or returning at once: total ns."""
    async def kid(d):
        if d:
            await trio.sleep(d)

    async def main():
        t0 = time.perf_counter_ns()
        async with trio.open_nursery() as nursery:
            for i in range(n):
                d = ((i * 48271) % n + 1) * 1e-6 if sleep else 0
                nursery.start_soon(kid, d)
        return time.perf_counter_ns() - t0

    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(main, clock=clock)


def sleepers(n):
    return (tasks_ns(n, True) - tasks_ns(n, False)) / n


FIGURES = [
    # key, function of n returning ns per op, n
    ("checkpoint_ns", lambda n: timed(n, checkpoints), 200_000),
    ("spawn_join_ns", lambda n: timed(n, spawn_join), 100_000),
    ("move_on_after_ns", lambda n: timed(n, move_on_after), 200_000),
    ("cancel_scope_ns", lambda n: timed(n, cancel_scope), 200_000),
    ("sleepers_ns", sleepers, 20_000),
]


def measure(fn, n, budget):
    """Fastest of ROUNDS rounds of n, fewer (and smaller) if slow."""
    start = time.monotonic()
    # A first small round estimates the cost, to size the others.
    probe = max(1000, n // 100)
    per_op_ns = fn(probe)
    if per_op_ns * n / 1e9 * ROUNDS > budget:
        n = max(probe, int(budget / ROUNDS / (per_op_ns / 1e9)))
    best = None
    for _ in range(ROUNDS):
        v = fn(n)
        best = v if best is None else min(best, v)
        if time.monotonic() - start > budget:
            break
    return best, n


def main(figures=FIGURES, budget=BUDGET):
    """Measures `figures` within `budget` seconds and prints their lines
    (bench/trio_sync_baseline.py calls it with its own)."""
    results = []
    for key, fn, n in figures:
        ns, n = measure(fn, n, budget / len(figures))
        results.append((key, ns, n))
    sizes = ", ".join(f"{k[:-3]} N={n}" for k, _, n in results)
    print(f"# trio {trio.__version__}, python {sys.version.split()[0]}; "
          f"{sizes}; fastest of {ROUNDS} rounds")
    for key, ns, _ in results:
        print(f"TRIO {key}={ns:.1f}")


if __name__ == "__main__":
    main()
