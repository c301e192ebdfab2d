"""samples/timeout: move_on_after and fail_after around a slow call.
The Python twin of timeout.c: both print the same lines, in about 6 s.
"""
import trio


async def slow_network_call():
    await trio.sleep(10)
    print("Got a response (never printed)", flush=True)


async def main():
    print("Calling the slow service, giving up after 5 s...", flush=True)
    with trio.move_on_after(5) as scope:
        await slow_network_call()
    if scope.cancelled_caught:
        print("Timed out, using fallback", flush=True)

    print("Calling it again, failing after 1 s...", flush=True)
    try:
        with trio.fail_after(1):
            await slow_network_call()
    except trio.TooSlowError:
        print("fail_after raised a timeout error (C: -PTRIO_ETIMEDOUT, "
              "Trio: TooSlowError)", flush=True)


if __name__ == "__main__":
    trio.run(main)
