"""samples/echo_server: Trio's echo server and three clients that talk to
it, then stop it. The Python twin of echo_server.c: both print the same
lines.

    python3 echo_server.py          the demo
    python3 echo_server.py PORT     only the server, until ^C
"""
import sys
from functools import partial

import trio


async def echo(stream):
    async with stream:
        while True:
            data = await stream.receive_some(1024)
            if not data:
                break               # the client closed
            await stream.send_all(data)


async def client(i, port, results):
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        line = f"hello from client {i}".encode()
        await stream.send_all(line)
        back = b""
        while len(back) < len(line):
            data = await stream.receive_some(64)
            if not data:
                raise trio.BrokenResourceError("the server closed early")
            back += data
        results[i] = back.decode()


async def main(port=None):
    served = 0

    async def counting_echo(stream):
        nonlocal served
        served += 1
        await echo(stream)

    async with trio.open_nursery() as server_nursery:
        listeners = await server_nursery.start(
            partial(trio.serve_tcp, counting_echo, port or 0,
                    host="127.0.0.1"))
        if port:
            print(f"Echo server listening on 127.0.0.1:{port} (^C to stop)",
                  flush=True)
            return
        real_port = listeners[0].socket.getsockname()[1]
        print("Echo server listening on 127.0.0.1")
        results = [None] * 3
        async with trio.open_nursery() as clients_nursery:
            for i in range(3):
                clients_nursery.start_soon(client, i, real_port, results)
        for i in range(3):
            print(f"client {i} got back: {results[i]}")
        print(f"Served {served} connections; stopping the server.")
        server_nursery.cancel_scope.cancel()
    print("Server stopped. All tasks are accounted for.")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else None)
