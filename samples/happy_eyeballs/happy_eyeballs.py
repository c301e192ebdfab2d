"""samples/happy_eyeballs: open_tcp_stream to a name with three addresses
where the first two never answer. The Python twin of happy_eyeballs.c:
both print the same lines, but for the measured times
(tests/twins: measured seconds).
"""
import socket as stdsocket
import time

import trio
import trio.socket

IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.1"]


class Resolver(trio.abc.HostnameResolver):
    def __init__(self, ports):
        self.ports = ports

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0,
                          flags=0):
        if host not in ("eyeballs.example", b"eyeballs.example"):
            raise trio.socket.gaierror(trio.socket.EAI_NONAME, "unknown")
        return [(trio.socket.AF_INET, trio.socket.SOCK_STREAM, 6, "",
                 (ip, p)) for ip, p in zip(IPS, self.ports)]

    async def getnameinfo(self, sockaddr, flags):
        raise NotImplementedError


def dead_listener(ip):
    """A listener that never accepts, its queue filled: SYNs are dropped."""
    ls = stdsocket.socket()
    ls.bind((ip, 0))
    ls.listen(1)
    fillers = []
    for _ in range(2):
        f = stdsocket.socket()
        f.setblocking(False)
        f.connect_ex(ls.getsockname())
        fillers.append(f)
    return ls, fillers


async def main():
    dead = [dead_listener(ip) for ip in IPS[:2]]
    live = trio.socket.socket()
    await live.bind((IPS[2], 0))
    live.listen()
    ports = [ls.getsockname()[1] for ls, _ in dead] + [live.getsockname()[1]]
    trio.socket.set_custom_hostname_resolver(Resolver(ports))
    print("eyeballs.example resolves to 127.0.0.2, 127.0.0.3, 127.0.0.1;")
    print("the first two never answer, the third is a live server.")

    async def live_server():
        conn, _ = await live.accept()
        with conn:
            await conn.send(b"hello")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(live_server)
        t0 = time.monotonic()
        stream = await trio.open_tcp_stream("eyeballs.example", 9)
        async with stream:
            ip = stream.socket.getpeername()[0]
            print(f"Connected to {ip} after {time.monotonic() - t0:.2f} s "
                  f"(3 attempts, 250 ms apart); the others were cancelled.")
            data = await stream.receive_some(16)
            print(f"The server says: {data.decode()}")
    live.close()
    for ls, fillers in dead:
        ls.close()
        for f in fillers:
            f.close()


if __name__ == "__main__":
    trio.run(main)
