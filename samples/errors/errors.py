"""samples/errors: a child's failure cancels its siblings and reaches the
parent. The Python twin of errors.c: both print the same lines.

The problematic child fails at 1 s; the nursery cancels the well-behaved
child (it never wakes), joins, and raises. `except*` catches the error both
from a Trio that raises it bare (strict_exception_groups=False, before 0.25)
and from one that wraps it in an ExceptionGroup (0.25 and later).
"""
import trio


async def well_behaved_child():
    print("Well-behaved child is going to sleep.", flush=True)
    await trio.sleep(3)
    print("Well-behaved child woke up!", flush=True)  # never printed


async def problematic_child():
    await trio.sleep(1)
    raise RuntimeError("Oops, I tripped!")


async def parent():
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(well_behaved_child)
            nursery.start_soon(problematic_child)
    except* RuntimeError as group:
        for e in group.exceptions:
            print(f"The parent caught the child's error: {e}", flush=True)


if __name__ == "__main__":
    trio.run(parent)
