"""Python's peer for the udp and tls cases: asyncio's datagram endpoint and SSL servers (uvloop's loop
with --uvloop), written as the asyncio docs do. Same command line, start-up line and stdin rule as
asyncio_server.py; --mode udp-echo|tls-echo|tls-sink, certificates from $PROTOLOOP_BENCH_TLS.
"""
import asyncio
import os
import ssl

from asyncio_server import Echo, Sink, announce, run


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


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
    announce(port)
    await asyncio.Event().wait()


if __name__ == '__main__':
    run(main, 'udp-echo')
