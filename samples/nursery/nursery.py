"""samples/nursery: the parent/child program of Trio's tutorial.

The Python twin of nursery.c: both print the same lines in the same order.

ptrio runs the tasks of a batch in FIFO order, so the C children print their
"going to sleep" lines in the order they were started: A, B, C. Trio runs a
batch in a random order (each batch is reversed with probability 1/2), so
the tutorial's program prints A, B, C or C, B, A. To keep this twin
deterministic, the parent waits after each start_soon until the new child is
asleep (trio.testing.wait_all_tasks_blocked); that changes no other line and
moves each sleep by microseconds only.
"""
import trio
import trio.testing


async def child(name, secs):
    print(f"Child {name} is going to sleep for {secs}s.", flush=True)
    await trio.sleep(secs)
    print(f"Child {name} is awake!", flush=True)


async def parent():
    print("Parent is starting a nursery.", flush=True)
    async with trio.open_nursery() as nursery:
        for name, secs in (("A", 3), ("B", 1), ("C", 2)):
            nursery.start_soon(child, name, secs)
            await trio.testing.wait_all_tasks_blocked()  # ptrio's FIFO order
    print("Nursery is closed. All children are accounted for.", flush=True)


if __name__ == "__main__":
    trio.run(parent)
