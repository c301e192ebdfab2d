"""bench/trio_baseline.py: Python Trio's figures on this machine, the
baseline of bench/bench_nursery.

Prints two lines that bench_nursery reads from the file named by its
first argument (`make bench` writes them to bench-trio.txt):

    TRIO spawn_join_ns=<n>        start N trivial tasks in a nursery and
                                  join them: ns per task
    TRIO scope_enter_exit_ns=<n>  `with trio.move_on_after(5): pass`: ns
                                  per block

Each figure is the fastest of a few rounds. The sizes shrink if this
machine is slow, so that the whole run stays well under 30 s. Lines
starting with '#' are comments.
"""
import sys
import time

import trio

SPAWN_N = 100_000
SCOPE_N = 200_000
ROUNDS = 3
BUDGET = 20.0   # seconds for everything, with margin under 30 s


def spawn_join_round(n):
    async def trivial():
        pass

    async def main():
        t0 = time.perf_counter_ns()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(trivial)
        return (time.perf_counter_ns() - t0) / n

    return trio.run(main)


def scope_round(n):
    async def main():
        t0 = time.perf_counter_ns()
        for _ in range(n):
            with trio.move_on_after(5):
                pass
        return (time.perf_counter_ns() - t0) / n

    return trio.run(main)


def measure(round_fn, n, budget):
    """Fastest of ROUNDS rounds of n, fewer (and smaller) if slow."""
    start = time.monotonic()
    # A first small round estimates the cost, to size the others.
    probe = max(1000, n // 100)
    per_op_ns = round_fn(probe)
    per_round_s = per_op_ns * n / 1e9
    if per_round_s * ROUNDS > budget:
        n = max(probe, int(budget / ROUNDS / (per_op_ns / 1e9)))
    best = None
    for _ in range(ROUNDS):
        v = round_fn(n)
        best = v if best is None else min(best, v)
        if time.monotonic() - start > budget:
            break
    return best, n


def main():
    spawn_ns, spawn_n = measure(spawn_join_round, SPAWN_N, BUDGET / 2)
    scope_ns, scope_n = measure(scope_round, SCOPE_N, BUDGET / 2)
    print(f"# trio {trio.__version__}, python {sys.version.split()[0]}; "
          f"spawn_join N={spawn_n}, scope_enter_exit N={scope_n}; "
          f"fastest of {ROUNDS} rounds")
    print(f"TRIO spawn_join_ns={spawn_ns:.1f}")
    print(f"TRIO scope_enter_exit_ns={scope_ns:.1f}")


if __name__ == "__main__":
    main()
