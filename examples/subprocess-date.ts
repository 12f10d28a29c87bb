// The spec's "loop.subprocess_exec() and SubprocessProtocol" example, in protoloop: a child prints the
// current date into a pipe; the protocol collects it and waits for both the exit and the pipe's end.
// Run: npm run example -- subprocess-date
import { SubprocessProtocol, getRunningLoop, type Future } from 'protoloop';

class DateProtocol extends SubprocessProtocol {
  output: Buffer[] = [];
  pipeClosed = false;
  exited = false;

  constructor(private readonly exitFuture: Future<boolean>) {
    super();
  }

  override pipeConnectionLost(_fd: number, _exc: Error | null): void {
    this.pipeClosed = true;
    this.checkForExit();
  }

  override pipeDataReceived(_fd: number, data: Buffer): void {
    this.output.push(data);
  }

  override processExited(): void {
    this.exited = true;
    // processExited() can be called before pipeConnectionLost(): wait until both are called.
    this.checkForExit();
  }

  checkForExit(): void {
    if (this.pipeClosed && this.exited) this.exitFuture.setResult(true);
  }
}

async function getDate(): Promise<string> {
  const loop = getRunningLoop();
  const code = 'console.log(new Date().toString())';
  const exitFuture = loop.createFuture<boolean>();

  // Create the subprocess controlled by DateProtocol; redirect the standard output into a pipe.
  const [transport, protocol] = await loop.subprocessExec(
    () => new DateProtocol(exitFuture),
    process.execPath,
    ['-e', code],
    { stdin: null, stderr: null },
  );

  // Wait for the subprocess exit using the processExited() method of the protocol.
  await exitFuture;

  // Close the stdout pipe.
  transport.close();

  // Read the output which was collected by the pipeDataReceived() method of the protocol.
  return Buffer.concat(protocol.output).toString('ascii').trimEnd();
}

void getDate().then((date) => console.log(`Current date: ${date}`));
