// The udp case's servers: a datagram echo, protoloop's createDatagramEndpoint (`--impl protoloop`)
// or Node's dgram (`--impl node`), each written as its docs show. Same command line and control
// channel as every benchmark server (common.cjs); the printed port is the UDP port.
'use strict';
const path = require('node:path');
const { parseArgs, listening, control } = require('./common.cjs');

const impl = process.argv[process.argv.indexOf('--impl') + 1];
const { port } = parseArgs();

if (impl === 'protoloop') {
  const { createDatagramEndpoint } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));
  class Echo {
    connectionMade(transport) {
      this.transport = transport;
    }
    datagramReceived(data, addr) {
      this.transport.sendto(data, addr);
    }
  }
  createDatagramEndpoint(() => new Echo(), { localAddr: ['127.0.0.1', port] }).then(([transport]) => {
    listening(transport.getExtraInfo('sockname')[1]);
    control();
  });
} else if (impl === 'node') {
  const dgram = require('node:dgram');
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(port, '127.0.0.1', () => {
    listening(sock.address().port);
    control();
  });
} else {
  throw new Error(`unknown --impl ${impl}`);
}
