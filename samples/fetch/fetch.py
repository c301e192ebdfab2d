"""samples/fetch: the Trio guide's concurrent web fetch: several GETs at
once, each under its own timeout. The Python twin of fetch.c: both print
the same lines (but for the port).

Trio has no HTTP client of its own, so the GET is written by hand over
trio.open_tcp_stream; the server is a few lines on trio.serve_tcp, in the
same nursery: "/" and "/about" answer at once and after 50 ms, "/missing"
with a 404 after 100 ms, "/slow" only after 5 s, beyond its 1 s timeout.
"""
from functools import partial

import trio

ROUTES = {
    "/": (200, 0.0, b"Hello from ptrio's httpd\n"),
    "/about": (200, 0.05, b"ptrio: Trio's structured concurrency for C\n"),
    "/missing": (404, 0.1, b"no such page\n"),
    "/slow": (200, 5.0, b"finally\n"),
}
TIMEOUT = 1


async def httpd(stream):
    async with stream:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(2048)
            if not data:
                return
            head += data
        path = head.split(b" ")[1].decode()
        status, delay, body = ROUTES.get(path, (404, 0, b"not found\n"))
        await trio.sleep(delay)
        reason = "OK" if status == 200 else "Not Found"
        await stream.send_all(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode() + body)


async def get(url):
    """The status code of GET url (http://host:port/path)."""
    hostport, _, path = url[len("http://"):].partition("/")
    host, _, port = hostport.partition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n"
                              f"Connection: close\r\n\r\n".encode())
        answer = b""
        while True:
            data = await stream.receive_some(16384)
            if not data:
                break
            answer += data
    return int(answer.split(b" ")[1])


async def fetch(url):
    with trio.move_on_after(TIMEOUT) as scope:
        status = await get(url)
        print(f"Fetched {url}: {status}", flush=True)
    if scope.cancelled_caught:
        print(f"Timed out after 1 s: {url}", flush=True)


async def main():
    async with trio.open_nursery() as services:
        listeners = await services.start(
            partial(trio.serve_tcp, httpd, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as fetches:
            for path in ROUTES:
                fetches.start_soon(fetch, f"http://127.0.0.1:{port}{path}")
        print("All fetches done; stopping the server.")
        services.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
