"""Python's peer of the streams case (issue 18): a line-based echo on asyncio's streams (uvloop's loop
with --uvloop), written as the asyncio docs do: `start_server`, `readline`, `write`, `drain`.
Same command line, start-up line and stdin rule as asyncio_server.py; --mode line-echo.
"""
import asyncio

from asyncio_server import announce, run


async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass  # the load generator resets its connections when it is done
    finally:
        writer.close()


async def main(args):
    if args.mode != 'line-echo':
        raise SystemExit(f'unknown --mode {args.mode}')
    server = await asyncio.start_server(handle, '127.0.0.1', args.port, backlog=1024)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


if __name__ == '__main__':
    run(main, 'line-echo')
