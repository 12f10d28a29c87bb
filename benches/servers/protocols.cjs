// The echo and sink protocols every protoloop server of the benchmark runs (plain and over TLS), on the
// built package (dist/cjs), written as a user would.
'use strict';
const path = require('node:path');
const { Protocol } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));

class Echo extends Protocol {
  connectionMade(transport) {
    this.transport = transport;
  }
  dataReceived(data) {
    this.transport.write(data);
  }
}

// The soak case's echo, for readers slower than the writers: stop reading while the transport's
// write buffer is over its high-water mark.
class FlowEcho extends Echo {
  pauseWriting() {
    this.transport.pauseReading();
  }
  resumeWriting() {
    this.transport.resumeReading();
  }
}

class Sink extends Protocol {
  received = 0;
  dataReceived(data) {
    this.received += data.length;
  }
  // Returning nothing closes the transport at the peer's EOF (over TLS, the close_notify ends it
  // anyway): that tells the client we are done.
  eofReceived() {}
}

module.exports = { Echo, FlowEcho, Sink };
