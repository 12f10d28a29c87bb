// Child processes: asyncio's `subprocess_exec` / `subprocess_shell`, `SubprocessTransport` and the
// pipe protocols that turn each stdio pipe's events into `SubprocessProtocol` callbacks.
import { checkBoolean, checkFunction, checkInteger, checkObject, checkString, errnoNamed, systemError } from './errors';
import { register, unregister } from './events';
import { release, retain } from './loop';
import { EventKind, native } from './native';
import { ReadPipeTransport, WritePipeTransport, startPipe } from './pipe';
import { SubprocessTransport, newProtocol, type ReadTransport, type WriteTransport } from './transports';

/** A new pipe to the child (Python's `subprocess.PIPE`). */
export const PIPE = -1;
/** stderr only: into the same place as stdout (Python's `subprocess.STDOUT`). */
export const STDOUT = -2;
/** `/dev/null` (Python's `subprocess.DEVNULL`). */
export const DEVNULL = -3;
/** The engine's code for `null`: the child inherits this process's stream. */
const INHERIT = -4;

/** Where a child's standard stream goes: `PIPE`, `DEVNULL`, `STDOUT` (stderr only), `null` (inherit), or a descriptor. */
export type StdioOption = number | null;

/** Options of `subprocessExec` / `subprocessShell`, Python's keyword arguments in camelCase. */
export interface SubprocessOptions {
  stdin?: StdioOption;
  stdout?: StdioOption;
  stderr?: StdioOption;
  /** Working directory of the child. */
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: Record<string, string>;
  /** `setsid()` in the child. */
  startNewSession?: boolean;
  /** `setpgid(0, processGroup)` in the child (0: a new group). */
  processGroup?: number;
  uid?: number;
  gid?: number;
}

const WINDOWS = process.platform === 'win32';

let signals: Record<string, number> | undefined;

/** A signal as a number, from a number or a name such as `'SIGTERM'`. */
function signalNumber(sig: unknown): number {
  if (typeof sig === 'string') {
    signals ??= native.signalConstants();
    // Own names only: 'toString' is no signal.
    if (!Object.hasOwn(signals, sig)) throw Object.assign(new TypeError(`Unknown signal: ${sig}`), { code: 'ERR_UNKNOWN_SIGNAL' });
    return signals[sig] as number;
  }
  return checkInteger('signal', sig, 0, 64);
}

/**
 * asyncio's `WriteSubprocessPipeProto` / `ReadSubprocessPipeProto`: the protocol of one stdio pipe,
 * forwarding to the subprocess transport with the pipe's fd number.
 */
class PipeProtocol {
  constructor(
    private readonly proc: UnixSubprocessTransport,
    private readonly fd: number,
  ) {}
  dataReceived(data: Buffer): void {
    this.proc._pipeDataReceived(this.fd, data);
  }
  connectionLost(exc: Error | null): void {
    this.proc._pipeConnectionLost(this.fd, exc);
  }
  pauseWriting(): void {
    this.proc._pipeFlow('pauseWriting');
  }
  resumeWriting(): void {
    this.proc._pipeFlow('resumeWriting');
  }
}

/**
 * A child process and the transports of its piped stdio. `processExited()` comes once when the child
 * is reaped, `pipeConnectionLost(fd, exc)` once per pipe, and `connectionLost` after all of them.
 */
class UnixSubprocessTransport extends SubprocessTransport {
  /** @internal */ readonly _id: number;
  #pid: number;
  #returncode: number | null = null;
  /** The piped stdio by fd; `closed` once its pipe closed, whatever protocol the pipe has by then. */
  #pipes = new Map<number, { transport: ReadPipeTransport | WritePipeTransport; closed: boolean }>();
  #finished = false;

  /** @internal */
  constructor(id: number, pid: number, protocol: unknown, extra: Record<string, unknown>) {
    super(protocol, extra);
    this._id = id;
    this.#pid = pid;
    register(id, this);
    retain();
  }

  /** @internal Connects the pipes the engine made, then tells the protocol. */
  _connect(stdio: [number, number, number]): void {
    stdio.forEach((streamId, fd) => {
      if (streamId < 0) return;
      const pipe = { transport: null as unknown as ReadPipeTransport | WritePipeTransport, closed: false };
      this.#pipes.set(fd, pipe);
      // Finishing counts closed pipes through the owner hook, not through PipeProtocol: a user may
      // give a pipe a protocol of their own (setProtocol), and the child must still finish.
      pipe.transport = startPipe(streamId, fd === 0, new PipeProtocol(this, fd), native.fd(streamId), () => {
        pipe.closed = true;
        this.#tryFinish();
      });
    });
    this._callProtocol('connectionMade', this);
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number): void {
    if (kind !== EventKind.ProcessExited) return;
    unregister(this._id);
    // Unix: the exit status, or -signal. Windows: the exit code is a DWORD (an NTSTATUS such as
    // 0xC0000005 for a crash), never a signal: asyncio and Node report it unsigned.
    this.#returncode = WINDOWS ? a >>> 0 : a | 0;
    this._callProtocol('processExited');
    this.#tryFinish();
  }

  /** @internal */
  _pipeDataReceived(fd: number, data: Buffer): void {
    this._callProtocol('pipeDataReceived', fd, data);
  }

  /** @internal */
  _pipeConnectionLost(fd: number, exc: Error | null): void {
    this._callProtocol('pipeConnectionLost', fd, exc);
  }

  /** @internal stdin's flow control reaches the subprocess protocol. */
  _pipeFlow(method: 'pauseWriting' | 'resumeWriting'): void {
    this._callProtocol(method);
  }

  #tryFinish(): void {
    if (this.#finished || this.#returncode === null) return;
    for (const { closed } of this.#pipes.values()) if (!closed) return;
    this.#finished = true;
    release();
    this._connectionLost(null);
  }

  getPid(): number {
    return this.#pid;
  }

  /** `null` while the child runs; its exit status after, or `-signal` when a signal ended it. */
  getReturncode(): number | null {
    return this.#returncode;
  }

  /** 0: the stdin `WriteTransport`; 1, 2: the stdout/stderr `ReadTransport`; `null` when not piped. */
  getPipeTransport(fd: number): ReadTransport | WriteTransport | null {
    checkInteger('fd', fd, 0, 0x7fffffff);
    return this.#pipes.get(fd)?.transport ?? null;
  }

  /** Sends `signal` (a number or a name such as `'SIGTERM'`); throws `ESRCH` once the child exited. */
  sendSignal(signal: number | string): void {
    const sig = signalNumber(signal);
    if (this.#returncode !== null) throw systemError(errnoNamed('ESRCH'), 'kill');
    const r = native.sendSignal(this._id, sig);
    if (r < 0) throw systemError(r, 'kill');
  }

  /** `SIGTERM`. */
  terminate(): void {
    this.sendSignal('SIGTERM');
  }

  /** `SIGKILL`. */
  kill(): void {
    this.sendSignal('SIGKILL');
  }

  /** Closes the pipes and kills the child if it still runs; `connectionLost` follows once it is reaped. */
  close(): void {
    if (this._closing) return;
    this._closing = true;
    for (const { transport } of this.#pipes.values()) transport.close();
    if (this.#returncode === null) native.sendSignal(this._id, signalNumber('SIGKILL'));
  }

  /** @internal */
  protected _abort(): void {
    this._closing = true;
    for (const { transport } of this.#pipes.values()) {
      if (transport instanceof WritePipeTransport) transport.abort();
      else transport.close();
    }
    if (this.#returncode === null) native.sendSignal(this._id, signalNumber('SIGKILL'));
  }

  override toString(): string {
    return `<SubprocessTransport pid=${this.#pid}${this.#returncode === null ? ' running' : ` returncode=${this.#returncode}`}>`;
  }
}

function stdioCode(name: string, v: unknown, allowStdout: boolean): number {
  if (v === undefined) return PIPE;
  if (v === null) return INHERIT;
  if (typeof v !== 'number') throw new TypeError(`The "${name}" option must be PIPE, DEVNULL${allowStdout ? ', STDOUT' : ''}, null or a file descriptor`);
  if (v === PIPE || v === DEVNULL || (v === STDOUT && allowStdout)) return v;
  if (v === STDOUT) throw new RangeError(`The "${name}" option cannot be STDOUT (only stderr can)`);
  return checkInteger(name, v, 0, 0x7fffffff);
}

function checkNoNul(name: string, s: string): string {
  if (s.includes('\0')) throw new TypeError(`The "${name}" argument must be a string without null bytes`);
  return s;
}

async function spawn<P>(
  protocolFactory: () => P,
  program: string,
  args: string[],
  options: SubprocessOptions,
  extra: Record<string, unknown>,
  verbatimArgs = false,
): Promise<[SubprocessTransport, P]> {
  checkObject('options', options);
  options ??= {};
  const stdin = stdioCode('options.stdin', options.stdin, false);
  const stdout = stdioCode('options.stdout', options.stdout, false);
  const stderr = stdioCode('options.stderr', options.stderr, true);
  const cwd = options.cwd == null ? null : checkNoNul('options.cwd', checkString('options.cwd', options.cwd));
  let env: string[] | null = null;
  if (options.env != null) {
    checkObject('options.env', options.env);
    env = Object.entries(options.env).map(([k, v]) => {
      if (k === '' || k.includes('=')) throw new TypeError(`The "options.env" key ${JSON.stringify(k)} is not a valid variable name`);
      return checkNoNul(`options.env.${k}`, `${k}=${checkString(`options.env.${k}`, v)}`);
    });
  }
  checkBoolean('options.startNewSession', options.startNewSession);
  const processGroup = options.processGroup == null ? null : checkInteger('options.processGroup', options.processGroup, 0, 0x7fffffff);
  const uid = options.uid == null ? null : checkInteger('options.uid', options.uid, 0, 0xffffffff);
  const gid = options.gid == null ? null : checkInteger('options.gid', options.gid, 0, 0xffffffff);
  const protocol = newProtocol(protocolFactory);
  const r = native.spawn({
    program,
    args,
    cwd: cwd ?? undefined,
    env: env ?? undefined,
    stdin,
    stdout,
    stderr,
    startNewSession: options.startNewSession === true,
    processGroup: processGroup ?? undefined,
    uid: uid ?? undefined,
    gid: gid ?? undefined,
    verbatimArgs,
  });
  if (r.errno < 0) throw systemError(r.errno, 'spawn', program);
  const info = { pid: r.pid, ...extra, stdin: options.stdin, stdout: options.stdout, stderr: options.stderr, cwd: cwd ?? undefined };
  const t = new UnixSubprocessTransport(r.id, r.pid, protocol, { subprocess: info });
  t._connect([r.stdin, r.stdout, r.stderr]);
  return [t, protocol];
}

/**
 * asyncio's `subprocess_exec`: runs `program` with `args` (no shell). stdin, stdout and stderr are
 * pipes unless the options say otherwise. Resolves to `[SubprocessTransport, protocol]` once
 * `connectionMade` has run; a program that cannot be started rejects (`ENOENT`, `EACCES`) before any
 * protocol callback.
 *
 * ```ts
 * const [transport, protocol] = await subprocessExec(() => new MyProtocol(), 'ls', ['-l'], { stdin: null });
 * ```
 */
export async function subprocessExec<P extends object>(
  protocolFactory: () => P,
  program: string,
  args: readonly string[] = [],
  options: SubprocessOptions = {},
): Promise<[SubprocessTransport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  checkNoNul('program', checkString('program', program));
  if (program === '') throw new TypeError('The "program" argument must be a non-empty string');
  if (args == null) args = [];
  if (!Array.isArray(args)) throw new TypeError('The "args" argument must be an array of strings');
  const list = args.map((a, i) => checkNoNul(`args[${i}]`, checkString(`args[${i}]`, a)));
  return spawn(protocolFactory, program, list, options, { program, args: list });
}

/**
 * The shell's command line for `cmd`: `/bin/sh -c cmd`, or on Windows `%COMSPEC% /d /s /c "cmd"` with
 * the arguments passed as they are (`verbatim`), as Node's `child_process` runs a shell there.
 * @internal
 */
export function shellCommand(cmd: string, platform: string = process.platform, env: NodeJS.ProcessEnv = process.env): { program: string; args: string[]; verbatim: boolean } {
  if (platform === 'win32') return { program: env.ComSpec ?? env.COMSPEC ?? 'cmd.exe', args: ['/d', '/s', '/c', `"${cmd}"`], verbatim: true };
  return { program: '/bin/sh', args: ['-c', cmd], verbatim: false };
}

/** asyncio's `subprocess_shell`: runs `cmd` with `/bin/sh -c` (Windows: `cmd.exe /d /s /c`). Otherwise as `subprocessExec`. */
export async function subprocessShell<P extends object>(
  protocolFactory: () => P,
  cmd: string,
  options: SubprocessOptions = {},
): Promise<[SubprocessTransport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  checkNoNul('cmd', checkString('cmd', cmd));
  const shell = shellCommand(cmd);
  return spawn(protocolFactory, shell.program, shell.args, options, { cmd }, shell.verbatim);
}
