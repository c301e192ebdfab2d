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
import time

import trio

import trio_baseline   # its measure and report, from beside this file

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


if __name__ == "__main__":
    trio_baseline.main(FIGURES, BUDGET)
