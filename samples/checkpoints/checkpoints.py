"""samples/checkpoints: a CPU-bound loop can only be cancelled at its
checkpoints. The Python twin of checkpoints.c.

The job crunches numbers for 400 ms of CPU time (the loop stops when the
clock says so; reading the clock is not a checkpoint). It runs twice under
move_on_after(0.1): with a checkpoint every 1000 iterations the deadline
stops it at about 100 ms; without checkpoints nothing can interrupt it, so
it runs to the end, overrunning the deadline by about 300 ms.

Lines starting with "  ~" carry measurements that vary from run to run and
differ between C and Python (Python does far fewer iterations); every other
line is the same in both twins. About 0.5 s in all.
"""
import trio

DEADLINE = 0.100
JOB = 0.400     # CPU time the job needs
SLACK = 0.050   # "on time": within this of the deadline
CHUNK = 1000    # iterations between two clock reads


def work(i):
    return ((i * 2654435761) & 0xFFFFFFFFFFFFFFFF) >> 7 & 1023


async def with_checkpoints():
    print("With a checkpoint every 1000 iterations:")
    i = total = 0
    start = trio.current_time()
    with trio.move_on_after(DEADLINE) as scope:
        while trio.current_time() - start < JOB:
            for _ in range(CHUNK):
                total += work(i)
                i += 1
            await trio.lowlevel.checkpoint()  # the deadline can stop us here
    elapsed = trio.current_time() - start
    print(f"  ~ stopped at iteration {i} after {elapsed * 1e3:.1f} ms "
          f"(sum {total})")
    if scope.cancelled_caught:
        print("  the deadline interrupted the job before it finished.")
    else:
        print("  the job finished: the deadline did not interrupt it!")
    if elapsed <= DEADLINE + SLACK:
        print("  it stopped on time.")
    else:
        print("  it stopped LATE.")


async def without_checkpoints():
    print("Without checkpoints:")
    i = total = 0
    start = trio.current_time()
    with trio.move_on_after(DEADLINE) as scope:
        while trio.current_time() - start < JOB:
            for _ in range(CHUNK):
                total += work(i)
                i += 1
            # no checkpoint: nothing here can be cancelled
    elapsed = trio.current_time() - start
    print(f"  ~ finished at iteration {i} after {elapsed * 1e3:.1f} ms "
          f"(sum {total})")
    if scope.cancelled_caught:
        print("  the deadline interrupted the job before it finished.")
    else:
        print("  the job ran to completion: the deadline could not "
              "interrupt it.")
    if elapsed > DEADLINE:
        print("  it overran the deadline: a loop that never checkpoints "
              "cannot be cancelled.")
        print(f"  ~ overran the deadline by {(elapsed - DEADLINE) * 1e3:.1f} ms")
    else:
        print("  it finished within the deadline.")


async def main():
    print("A job needing 400 ms of CPU, under move_on_after(100 ms).")
    await with_checkpoints()
    await without_checkpoints()


if __name__ == "__main__":
    trio.run(main)
