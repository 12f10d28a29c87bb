// Node's own `net`, written idiomatically: no-delay sockets, 'data' handlers that hand the chunk
// straight back to write() (no copies), write()'s return value and 'drain' for flow control.
'use strict';
const net = require('node:net');
const { CHUNK, parseArgs, listening, control } = require('./common.cjs');

const { port, mode, total } = parseArgs();
const chunk = Buffer.alloc(CHUNK, 'x');

const handlers = {
  echo(sock) {
    sock.on('data', (data) => sock.write(data));
  },
  // The soak case's echo, for readers slower than the writers: stop reading while write() says the
  // socket's buffer is full, until 'drain'.
  'echo-flow'(sock) {
    sock.on('data', (data) => {
      if (!sock.write(data)) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
    });
  },
  sink(sock) {
    let received = 0;
    sock.on('data', (data) => {
      received += data.length;
    });
    // allowHalfOpen is false: Node ends the socket at the peer's EOF, which tells the client we are done.
  },
  source(sock) {
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK);
        left -= n;
        if (!sock.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  },
};

// net has no receive-into-my-buffer API for accepted sockets: the buffered variant is the plain sink.
handlers['sink-buffered'] = handlers.sink;

const handle = handlers[mode];
if (!handle) throw new Error(`unknown mode ${mode}`);

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  sock.on('error', () => {}); // a client that resets must not take the server down
  handle(sock);
});
server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
  listening(server.address().port);
  control();
});
