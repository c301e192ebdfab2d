"""bench/trio_echo.py: Python Trio's echo server for bench_echo: writes
its port (a native int, 4 bytes) to the fd given as argument, then serves
on 127.0.0.1 until killed."""
import os
import struct
import sys
from functools import partial

import trio


async def echo(stream):
    try:
        while True:
            data = await stream.receive_some(4096)
            if not data:
                return
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass


async def main(report):
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        os.write(report, struct.pack("=i", port))


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
