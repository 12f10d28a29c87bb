"""Python's peer for the udp and tls cases: asyncio's datagram endpoint and SSL servers (uvloop's loop
with --uvloop), written as the asyncio docs do. Same command line, start-up line and stdin rule as
asyncio_server.py; --mode udp-echo|tls-echo|tls-sink, certificates from $PROTOLOOP_BENCH_TLS.
"""
import argparse
import asyncio
import os
import socket
import ssl
import sys
import threading


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        transport.get_extra_info('socket').setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Sink(asyncio.Protocol):
    received = 0

    def data_received(self, data):
        self.received += len(data)


async def main(args):
    loop = asyncio.get_running_loop()
    if args.mode == 'udp-echo':
        transport, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=('127.0.0.1', args.port))
        port = transport.get_extra_info('sockname')[1]
    else:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        d = os.environ['PROTOLOOP_BENCH_TLS']
        ctx.load_cert_chain(os.path.join(d, 'cert.pem'), os.path.join(d, 'key.pem'))
        factory = {'tls-echo': Echo, 'tls-sink': Sink}[args.mode]
        server = await loop.create_server(factory, '127.0.0.1', args.port, backlog=1024, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
    print('LISTENING', port, flush=True)

    def watch_stdin():
        while sys.stdin.buffer.read1(64):
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await asyncio.Event().wait()


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--mode', default='udp-echo')
    p.add_argument('--total', type=int, default=0)
    p.add_argument('--uvloop', action='store_true')
    args = p.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(main(args))
