"""Python's peer: asyncio Protocols (and uvloop's loop with --uvloop), written as the asyncio docs do.

Same command line and start-up line as every server of the benchmark: --port P --mode echo|sink|source
--total N, prints `LISTENING <port>`, exits when stdin closes.
"""
import argparse
import asyncio
import socket
import sys
import threading
import os

CHUNK = 64 * 1024


def nodelay(transport):
    sock = transport.get_extra_info('socket')
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        nodelay(transport)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Sink(asyncio.Protocol):
    received = 0

    def connection_made(self, transport):
        nodelay(transport)

    def data_received(self, data):
        self.received += len(data)

    # eof_received returning None closes the transport: that tells the client we are done.


class BufferedSink(asyncio.BufferedProtocol):
    received = 0

    def __init__(self):
        self.buffer = memoryview(bytearray(1 << 20))

    def connection_made(self, transport):
        nodelay(transport)

    def get_buffer(self, sizehint):
        return self.buffer

    def buffer_updated(self, nbytes):
        self.received += nbytes


class Source(asyncio.Protocol):
    def __init__(self, total):
        self.left = total
        self.paused = False
        self.done = False
        self.chunk = b'x' * CHUNK

    def connection_made(self, transport):
        nodelay(transport)
        self.transport = transport
        self.pump()

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.pump()

    def pump(self):
        while not self.paused and self.left > 0:
            n = min(self.left, CHUNK)
            self.left -= n
            self.transport.write(self.chunk if n == CHUNK else self.chunk[:n])
        if self.left == 0 and not self.done:
            self.done = True
            # Closed on the next turn, not inside resume_writing(): CPython 3.11 calls
            # connection_lost twice when close() runs from the write-ready callback.
            asyncio.get_running_loop().call_soon(self.transport.close)


async def main(args):
    loop = asyncio.get_running_loop()
    factory = {
        'echo': Echo,
        'sink': Sink,
        'sink-buffered': BufferedSink,
        'source': lambda: Source(args.total),
    }[args.mode]
    server = await loop.create_server(factory, '127.0.0.1', args.port, backlog=1024)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def announce(port):
    """The start-up line the harness waits for; the process exits when stdin closes, so that no server
    outlives the harness."""
    print('LISTENING', port, flush=True)

    def watch_stdin():
        while sys.stdin.buffer.read1(64):
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()


def run(main, default_mode):
    """The command line every benchmark server takes; --uvloop runs it on uvloop's loop."""
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--mode', default=default_mode)
    p.add_argument('--total', type=int, default=0)
    p.add_argument('--uvloop', action='store_true')
    args = p.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(main(args))


if __name__ == '__main__':
    run(main, 'echo')
