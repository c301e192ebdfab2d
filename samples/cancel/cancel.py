"""samples/cancel: cancelling a running task through its nursery, and the
cleanup that runs during cancellation. The Python twin of cancel.c: both
print the same lines.

The cancel comes at 3.5 s, halfway between two "Still running..." lines, so
that no wake-up ties with it (Trio runs each batch in a random order).
"""
import trio


async def long_running_task():
    try:
        while True:
            print("Still running...", flush=True)
            await trio.sleep(1)
    except trio.Cancelled:
        print("Task was cancelled!", flush=True)
        raise


async def parent():
    async with trio.open_nursery() as nursery:
        nursery.start_soon(long_running_task)
        await trio.sleep(3.5)
        print("Parent: cancelling the task.", flush=True)
        nursery.cancel_scope.cancel()
    print("Nursery is closed: the task is gone.", flush=True)


if __name__ == "__main__":
    trio.run(parent)
