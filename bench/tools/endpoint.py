#!/usr/bin/env python3
"""One upstream endpoint for bench/failover.sh: HTTP/1.1 keep-alive, `200 hello` on every path
(`/healthz` too). SIGUSR1 makes it slow (each answer waits SLOW_MS, 200 by default), SIGUSR2
fast again. asyncio, one process, loopback only.

    endpoint.py PORT
"""
import asyncio
import os
import signal
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello"
slow = 0.0


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"content-length:" in head.lower():
                # Benchmarks send GETs; drain a body if one comes.
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
            if slow:
                await asyncio.sleep(slow)
            writer.write(RESPONSE)
            if b"connection: close" in head.lower():
                await writer.drain()
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def set_slow(value):
    global slow
    slow = value


async def main(port):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, set_slow, int(os.environ.get("SLOW_MS", "200")) / 1000)
    loop.add_signal_handler(signal.SIGUSR2, set_slow, 0.0)
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
