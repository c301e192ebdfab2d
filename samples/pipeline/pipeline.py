"""samples/pipeline: a producer feeds jobs to three workers over a channel;
a CapacityLimiter lets at most two of them work at once; a collector gathers
their results from a second channel. Closing the channels shuts everything
down: the workers' loops end when the producer closes the jobs channel, the
collector's when the last worker closes its end of the results channel.
The Python twin of pipeline.c: both print the same lines, in about 2 s.
(Trio runs the tasks of a batch in random order; every line here is
either at its own time or causally after the one before, so the output is
the same every run.)
"""
import trio

JOBS = [(1, 600), (2, 200), (3, 1000), (4, 400), (5, 800), (6, 200)]
WORKERS = "ABC"


async def producer(jobs_tx):
    async with jobs_tx:
        for job in JOBS:
            await jobs_tx.send(job)
        print(f"producer: all {len(JOBS)} jobs handed out, closing", flush=True)


async def worker(name, jobs_rx, results_tx, limiter):
    async with jobs_rx, results_tx:
        async for job, ms in jobs_rx:
            async with limiter:
                print(f"worker {name}: job {job} ({ms} ms)", flush=True)
                await trio.sleep(ms / 1000)
            await results_tx.send((job, name, job * job))


async def collector(results_rx):
    total = 0
    async with results_rx:
        async for job, name, value in results_rx:
            await trio.sleep(0.1)
            print(f"collector: job {job} = {value} (worker {name})", flush=True)
            total += value
    print(f"collector: every worker is done, total {total}", flush=True)


async def main():
    print(f"pipeline: {len(JOBS)} jobs, {len(WORKERS)} workers, "
          f"at most 2 at work", flush=True)
    jobs_tx, jobs_rx = trio.open_memory_channel(0)
    results_tx, results_rx = trio.open_memory_channel(0)
    limiter = trio.CapacityLimiter(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector, results_rx)
        # Each worker gets clones; the originals close once handed out.
        async with jobs_rx, results_tx:
            for name in WORKERS:
                nursery.start_soon(worker, name, jobs_rx.clone(),
                                   results_tx.clone(), limiter)
                await trio.sleep(0.02)      # they queue in order A, B, C
        nursery.start_soon(producer, jobs_tx)
    print("pipeline: done, every channel closed", flush=True)


if __name__ == "__main__":
    trio.run(main)
