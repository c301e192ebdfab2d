"""samples/download: concurrent downloads of several files to disk, each
written completely or not at all, at most three at a time. The Python twin
of download.c: both print the same lines (off a terminal), though two
downloads that end close together may swap lines (tests/twins: any order).

The server (trio.serve_tcp, same nursery) sends 16 KB every 10 ms;
"broken.bin" is cut off midway. Each body goes to "<name>.part", is
fsync'ed in a worker thread, then renamed; a failure removes the .part.
"""
import os
import tempfile
from functools import partial

import trio

KB = 1024
LIMIT = 3
# path -> (size, cut after)
FILES = {
    "/files/a.bin": (256 * KB, 0),
    "/files/b.bin": (512 * KB, 0),
    "/files/broken.bin": (512 * KB, 200 * KB),
    "/files/c.bin": (384 * KB, 0),
    "/files/d.bin": (640 * KB, 0),
    "/files/e.bin": (128 * KB, 0),
}


def byte_at(path, offset):
    """samples/common/httpd.c's generated content, byte for byte."""
    h = 2166136261
    for c in path.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return ((h >> 8) + offset * 131 + (offset >> 9)) & 0xFF


def body(path, start, n):
    return bytes(byte_at(path, start + i) for i in range(n))


async def httpd(stream):
    async with stream:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(2048)
            if not data:
                return
            head += data
        path = head.split(b" ")[1].decode()
        size, cut = FILES[path]
        await stream.send_all(
            f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n"
            f"Connection: close\r\n\r\n".encode())
        sent = 0
        while sent < size:
            n = min(16 * KB, size - sent)
            if cut and sent + n > cut:
                n = cut - sent
            if n <= 0:
                break
            await stream.send_all(body(path, sent, n))
            sent += n
            await trio.sleep(0.01)


class PartialFile(Exception):
    pass


async def get_file(port, path, dest):
    part = dest + ".part"
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                  f"Connection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(16 * KB)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r")[0])
            got = 0
            with open(part, "wb") as f:
                while True:
                    f.write(rest)
                    got += len(rest)
                    rest = await stream.receive_some(16 * KB)
                    if not rest:
                        break
                if got != length:
                    raise PartialFile("Transferred a partial file")
                await trio.to_thread.run_sync(os.fsync, f.fileno())
        os.rename(part, dest)
        return got
    except BaseException:
        if os.path.exists(part):
            os.unlink(part)
        raise


async def main():
    print(f"Downloading {len(FILES)} files, at most {LIMIT} at a time...",
          flush=True)
    limiter = trio.CapacityLimiter(LIMIT)
    done = {}
    with tempfile.TemporaryDirectory(prefix="ptrio-download-") as dirname:

        async def download(port, path):
            name = path.rsplit("/", 1)[1]
            async with limiter:
                try:
                    done[path] = await get_file(port, path,
                                                os.path.join(dirname, name))
                    print(f"{name}: done ({done[path]} bytes)", flush=True)
                except PartialFile as e:
                    print(f"{name}: failed ({e}); nothing was written",
                          flush=True)

        async with trio.open_nursery() as services:
            listeners = await services.start(
                partial(trio.serve_tcp, httpd, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as downloads:
                for path in FILES:
                    downloads.start_soon(download, port, path)
            services.cancel_scope.cancel()

        ok = total = 0
        for path, (size, _) in FILES.items():
            dest = os.path.join(dirname, path.rsplit("/", 1)[1])
            if path in done:
                with open(dest, "rb") as f:
                    if f.read() == body(path, 0, size):
                        ok += 1
                        total += size
            elif os.path.exists(dest) or os.path.exists(dest + ".part"):
                raise SystemExit(f"{dest} left behind")
        print(f"{ok} of {len(FILES)} files complete and checked byte for "
              f"byte ({total // KB} KB); {len(FILES) - ok} failed, leaving "
              f"nothing behind.")


if __name__ == "__main__":
    trio.run(main)
