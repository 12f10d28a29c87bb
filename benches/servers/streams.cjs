// The servers of the streams and http cases (issue 18), each written as its users would:
//   --mode line-echo   a line-based echo: each line read is written back
//     --impl protoloop   asyncio streams on protoloop: `for await (const line of reader)`, write, drain
//     --impl node        Node's net with readline (`createInterface({ input: socket })`), write back
//   --mode http        Node's http server answering `hello world\n` to every request
//     --impl protoloop   its connections accepted by protoloop (DuplexProtocol, emit('connection'))
//     --impl node        on Node's own net (`server.listen`)
// Same command line, start-up line and stdin rule as every benchmark server (common.cjs).
'use strict';
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { DuplexProtocol, createServer, startServer } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));
const { parseArgs, listening, control } = require('./common.cjs');

const arg = (k) => process.argv[process.argv.indexOf(k) + 1];
const impl = arg('--impl');
const { port, mode } = parseArgs();

function httpHandler(_req, res) {
  res.setHeader('content-type', 'text/plain');
  res.end('hello world\n');
}

async function main() {
  if (mode === 'line-echo' && impl === 'protoloop') {
    const server = await startServer(async (reader, writer) => {
      try {
        for await (const line of reader) {
          writer.write(line);
          await writer.drain();
        }
      } catch {
        // The load generator resets its connections when it is done.
      } finally {
        writer.close();
      }
    }, '127.0.0.1', port, { backlog: 1024 });
    return server.sockets[0].getsockname()[1];
  }
  if (mode === 'line-echo' && impl === 'node') {
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.on('error', () => {});
      const lines = readline.createInterface({ input: socket, crlfDelay: Infinity });
      lines.on('error', () => {}); // readline re-emits the socket's (the load generator's reset at its end)
      lines.on('line', (line) => socket.write(line + '\n'));
      lines.on('close', () => socket.end());
    });
    await new Promise((r) => server.listen({ host: '127.0.0.1', port, backlog: 1024 }, r));
    return server.address().port;
  }
  if (mode === 'http' && impl === 'protoloop') {
    const httpServer = http.createServer(httpHandler);
    const server = await createServer(() => new DuplexProtocol((d) => httpServer.emit('connection', d)), '127.0.0.1', port, { backlog: 1024 });
    return server.sockets[0].getsockname()[1];
  }
  if (mode === 'http' && impl === 'node') {
    const httpServer = http.createServer(httpHandler);
    await new Promise((r) => httpServer.listen({ host: '127.0.0.1', port, backlog: 1024 }, r));
    return httpServer.address().port;
  }
  throw new Error(`unknown --mode ${mode} --impl ${impl}`);
}

main().then((p) => {
  listening(p);
  control();
});
