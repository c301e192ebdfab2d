"""bench/trio_sync_baseline.py: Python Trio's figures for bench/bench_sync.

Prints lines "TRIO <key>=<ns>" (`make bench` writes them to
bench-trio-sync.txt, which bench_sync reads), each the twin of a C figure:

    TRIO chan_pingpong_ns=<n>  two tasks bouncing an int over two memory
                               channels of buffer 0: per round trip
    TRIO lock_handoff_ns=<n>   100 tasks each acquiring and releasing one
                               trio.Lock in a loop: per acquire/release

Each figure is the fastest of a few rounds; the sizes shrink when this
machine is slow, so that the whole run stays under about 10 s. Lines
starting with '#' are comments.
"""
import sys
import time

import trio

ROUNDS = 3
BUDGET = 10.0   # seconds for everything
LOCK_TASKS = 100


def pingpong(n):
    async def ponger(rx, tx):
        async with tx:
            async for v in rx:
                await tx.send(v + 1)

    async def main():
        ping_tx, ping_rx = trio.open_memory_channel(0)
        pong_tx, pong_rx = trio.open_memory_channel(0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ponger, ping_rx, pong_tx)
            t0 = time.perf_counter_ns()
            async with ping_tx:
                for i in range(n):
                    await ping_tx.send(i)
                    v = await pong_rx.receive()
            ns = (time.perf_counter_ns() - t0) / n
        assert v == n
        return ns

    return trio.run(main)


def lock_handoff(n):
    per = max(1, n // LOCK_TASKS)

    async def locker(lock):
        for _ in range(per):
            await lock.acquire()
            lock.release()

    async def main():
        lock = trio.Lock()
        t0 = time.perf_counter_ns()
        async with trio.open_nursery() as nursery:
            for _ in range(LOCK_TASKS):
                nursery.start_soon(locker, lock)
        return (time.perf_counter_ns() - t0) / (per * LOCK_TASKS)

    return trio.run(main)


FIGURES = [
    # key, function of n returning ns per op, n
    ("chan_pingpong_ns", pingpong, 50_000),
    ("lock_handoff_ns", lock_handoff, 100_000),
]


def measure(fn, n, budget):
    """Fastest of ROUNDS rounds of n, fewer (and smaller) if slow."""
    start = time.monotonic()
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


def main():
    results = []
    for key, fn, n in FIGURES:
        ns, n = measure(fn, n, BUDGET / len(FIGURES))
        results.append((key, ns, n))
    sizes = ", ".join(f"{k[:-3]} N={n}" for k, _, n in results)
    print(f"# trio {trio.__version__}, python {sys.version.split()[0]}; "
          f"{sizes}; fastest of {ROUNDS} rounds")
    for key, ns, _ in results:
        print(f"TRIO {key}={ns:.1f}")


if __name__ == "__main__":
    main()
