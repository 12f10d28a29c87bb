// Every case of the benchmark, in the order the table shows them. A case is a module with a name,
// its metrics, its variants and `measure()`; see README.md in this folder for the shape. Cases that
// other transports bring (BufferedProtocol, UDP, subprocess, TLS) are added to this list.
import bulk from './bulk.mjs';
import churn from './churn.mjs';
import echo from './echo.mjs';
import http from './http.mjs';
import memory from './memory.mjs';
import proxy from './proxy.mjs';
import sendfile from './sendfile.mjs';
import soak from './soak.mjs';
import streams from './streams.mjs';
import subprocess from './subprocess.mjs';
import tls from './tls.mjs';
import udp from './udp.mjs';

export const cases = [echo, bulk, churn, memory, soak];
cases.push(udp, tls, subprocess, proxy, sendfile, streams, http);
