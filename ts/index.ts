// protoloop: Python asyncio's Transports and Protocols for Node.js, on a Rust (tokio) engine.
// The addon first: on an unsupported Node.js it throws the Error that says so before anything else runs.
import './native';
import './events';
import { createDatagramEndpoint } from './datagram';
import { EventLoop } from './loop';
import { sendfile } from './sendfile';
import { createServer } from './server';
import { connectReadPipe, connectWritePipe } from './pipe';
import { connectAcceptedSocket, createConnection } from './connect';
import { startTls } from './tls';
import { subprocessExec, subprocessShell } from './subprocess';
import { createUnixConnection, createUnixServer } from './unix';

export { createDatagramEndpoint, type CreateDatagramEndpointOptions } from './datagram';
export { CancelledError, InvalidStateError, type SystemError } from './errors';
export { allocBuffer } from './buffered';
export { Future } from './future';
export { EventLoop, Handle, getRunningLoop, type ExceptionContext, type ExceptionHandler } from './loop';
export { BaseProtocol, BufferedProtocol, DatagramProtocol, Protocol, SubprocessProtocol, type Address } from './protocols';
export { SendfileNotAvailableError, sendfile, type FileLike } from './sendfile';
export { Server, createServer, type CreateServerOptions } from './server';
export { TransportSocket, constants } from './socket';
export { connectAcceptedSocket, createConnection, type ConnectAcceptedSocketOptions, type CreateConnectionOptions } from './connect';
export { startTls, type PeerCertificate, type SslObject, type SslOptions, type StartTlsOptions } from './tls';
export { connectReadPipe, connectWritePipe } from './pipe';
export { createUnixConnection, createUnixServer, socketpair, type CreateUnixConnectionOptions, type CreateUnixServerOptions } from './unix';
export { DEVNULL, PIPE, STDOUT, subprocessExec, subprocessShell, type StdioOption, type SubprocessOptions } from './subprocess';
export {
  DEFAULT_LIMIT,
  IncompleteReadError,
  LimitOverrunError,
  StreamReader,
  StreamReaderProtocol,
  StreamWriter,
  openConnection,
  openUnixConnection,
  startServer,
  startUnixServer,
  type ClientConnected,
  type OpenConnectionOptions,
  type OpenUnixConnectionOptions,
  type StartServerOptions,
  type StartUnixServerOptions,
  type StreamOptions,
} from './streams';
export { DuplexProtocol, TransportDuplex } from './duplex';
export { BaseTransport, DatagramTransport, ReadTransport, SubprocessTransport, Transport, WriteTransport } from './transports';

// Every loop function is also a method of the loop, as in asyncio (`loop.createConnection(...)`).
declare module './loop' {
  interface EventLoop {
    createConnection: typeof createConnection;
    createServer: typeof createServer;
    connectAcceptedSocket: typeof connectAcceptedSocket;
    sendfile: typeof sendfile;
    createDatagramEndpoint: typeof createDatagramEndpoint;
    startTls: typeof startTls;
    connectReadPipe: typeof connectReadPipe;
    connectWritePipe: typeof connectWritePipe;
    subprocessExec: typeof subprocessExec;
    subprocessShell: typeof subprocessShell;
    createUnixConnection: typeof createUnixConnection;
    createUnixServer: typeof createUnixServer;
  }
}
Object.assign(EventLoop.prototype, {
  createConnection,
  createServer,
  connectAcceptedSocket,
  sendfile,
  createDatagramEndpoint,
  startTls,
  connectReadPipe,
  connectWritePipe,
  subprocessExec,
  subprocessShell,
  createUnixConnection,
  createUnixServer,
});
