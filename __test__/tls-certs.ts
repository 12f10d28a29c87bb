// A throwaway PKI for the TLS tests, made with the openssl command line on every run: a CA, a
// server certificate for localhost/127.0.0.1 signed by it, a client certificate signed by it, and a
// self-signed certificate nobody trusts (CA:FALSE: webpki refuses a CA certificate as a server's own,
// even when it is given as `ca`, where OpenSSL takes it).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  selfCert: string;
  selfKey: string;
  dir: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function signed(dir: string, name: string, subject: string, ext: string): void {
  openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`]);
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'protoloop-tls-'));
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=protoloop test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  signed(dir, 'server', '/CN=localhost/O=protoloop', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  signed(dir, 'client', '/CN=protoloop client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'self.key', '-out', 'self.crt', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE']);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    caCert: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    selfCert: read('self.crt'),
    selfKey: read('self.key'),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
