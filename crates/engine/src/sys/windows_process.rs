//! Child processes on Windows: `tokio::process` spawns and waits (a wait registered on the process
//! handle, no thread per child), and each piped stdio stream is a named pipe whose server end is the
//! parent's (overlapped, registered with tokio) and whose client end the child inherits (plain), as
//! asyncio's Windows `subprocess` does. Signals: `SIGTERM`, `SIGKILL`, `SIGINT` and `SIGQUIT` end the
//! child with `TerminateProcess` (exit code 1), as Node's `kill()` does there; others are refused.
//! `start_new_session`, `process_group`, `uid` and `gid` are ignored, as CPython ignores them on Windows.
//! `subprocess_shell` runs `%COMSPEC% /d /s /c "cmd"` with the arguments verbatim, as Node does.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use super::{errno, Owned};
use crate::events::Kind;
use crate::stream::{FdKind, Stream};
use crate::subprocess::{SpawnOptions, Spawned, Stdio};
use crate::Core;

/// The signals Windows can "send": each ends the child.
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

pub struct Process {
    pub id: u32,
    pub pid: u32,
    /// The return code once the child has exited.
    returncode: Mutex<Option<i32>>,
    /// Asks the task that owns the child to end it.
    kill: Notify,
}

impl Process {
    pub fn returncode(&self) -> Option<i32> {
        *self.returncode.lock().unwrap()
    }

    /// Ends the child for `SIGTERM`, `SIGKILL`, `SIGINT` and `SIGQUIT`; `ESRCH` once it has exited,
    /// `ENOSYS` for any other signal.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        if self.returncode().is_some() {
            return Err(io::Error::from_raw_os_error(errno::ESRCH));
        }
        if !matches!(sig, SIGTERM | SIGKILL | SIGINT | SIGQUIT) {
            return Err(io::Error::from_raw_os_error(errno::ENOSYS));
        }
        self.kill.notify_one();
        Ok(())
    }

    /// Teardown: the child is ended, by its task or, once the runtime drops that task, by the
    /// `kill_on_drop` it was spawned with.
    pub(crate) fn kill_and_reap(&self) {
        self.kill.notify_one();
    }
}

/// The names `sendSignal` takes on Windows.
pub fn signal_numbers() -> HashMap<&'static str, i32> {
    [("SIGINT", SIGINT), ("SIGQUIT", SIGQUIT), ("SIGKILL", SIGKILL), ("SIGTERM", SIGTERM)].into_iter().collect()
}

/// A named pipe for one stdio stream: `(parent's end, child's end)`. `parent_reads` for stdout and
/// stderr. Must run inside the runtime (tokio registers the server end as it creates it).
fn pipe(parent_reads: bool) -> io::Result<(NamedPipeServer, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(r"\\.\pipe\protoloop-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let server = ServerOptions::new()
        .first_pipe_instance(true)
        .max_instances(1)
        .reject_remote_clients(true)
        .access_inbound(parent_reads)
        .access_outbound(!parent_reads)
        .create(&name)?;
    let client = std::fs::OpenOptions::new().read(!parent_reads).write(parent_reads).open(&name)?;
    // The client is in: the connect completes at once (`ERROR_PIPE_CONNECTED`), so one poll does it.
    {
        let mut connect = std::pin::pin!(server.connect());
        if let Poll::Ready(r) = connect.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            r?;
        }
    }
    Ok((server, client))
}

/// A copy of this process's stdout handle for a child; inherit (its stderr) when there is none (a
/// process without a console).
fn parent_stdout() -> std::process::Stdio {
    use std::os::windows::io::AsHandle;
    std::io::stdout().as_handle().try_clone_to_owned().map_or_else(|_| std::process::Stdio::inherit(), std::process::Stdio::from)
}

/// The child's end for `what`, and the parent's end when it is a pipe.
fn child_end(what: Stdio, parent_reads: bool) -> io::Result<(std::process::Stdio, Option<NamedPipeServer>)> {
    Ok(match what {
        Stdio::Pipe => {
            let (server, client) = pipe(parent_reads)?;
            (client.into(), Some(server))
        }
        Stdio::DevNull => (std::process::Stdio::null(), None),
        Stdio::Inherit => (std::process::Stdio::inherit(), None),
        Stdio::Fd(_) => return Err(super::unavailable("file descriptors as a child's stdio")),
        Stdio::Stdout => return Err(io::Error::from_raw_os_error(errno::EINVAL)),
    })
}

pub(crate) fn spawn(core: &Arc<Core>, opts: &SpawnOptions) -> io::Result<Spawned> {
    if opts.stdin == Stdio::Stdout || opts.stdout == Stdio::Stdout {
        return Err(io::Error::from_raw_os_error(errno::EINVAL));
    }
    let _rt = core.handle.enter();
    let mut cmd = Command::new(&opts.program);
    if opts.verbatim_args {
        for a in &opts.args {
            cmd.raw_arg(a);
        }
    } else {
        cmd.args(&opts.args);
    }
    cmd.kill_on_drop(true);
    if let Some(cwd) = &opts.cwd {
        cmd.current_dir(cwd);
    }
    if let Some(env) = &opts.env {
        cmd.env_clear();
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
    }
    let (child_in, parent_in) = child_end(opts.stdin, false)?;
    let (child_out, parent_out, out_for_err) = match opts.stdout {
        Stdio::Pipe => {
            let (server, client) = pipe(true)?;
            let copy = if opts.stderr == Stdio::Stdout { Some(client.try_clone()?) } else { None };
            (client.into(), Some(server), copy)
        }
        other => (child_end(other, true)?.0, None, None),
    };
    let (child_err, parent_err) = match (opts.stderr, out_for_err) {
        (Stdio::Stdout, Some(copy)) => (copy.into(), None),
        (Stdio::Stdout, None) => match opts.stdout {
            Stdio::DevNull => (std::process::Stdio::null(), None),
            // Inherited stdout: stderr goes to this process's stdout too, not to its stderr (as the
            // Unix backend's `inherit(1)`, and CPython's `GetStdHandle(STD_OUTPUT_HANDLE)`).
            _ => (parent_stdout(), None),
        },
        (other, _) => child_end(other, true)?,
    };
    cmd.stdin(child_in).stdout(child_out).stderr(child_err);
    let child = cmd.spawn()?;
    // The child's ends were moved into `cmd`; closed now, so that only the child holds them (a stray
    // copy of a write end would keep the parent's reader from ever seeing EOF).
    drop(cmd);
    let pid = child.id().unwrap_or(0);

    let id = core.next_id();
    let process = Arc::new(Process { id, pid, returncode: Mutex::new(None), kill: Notify::new() });
    core.register(id, crate::registry::Handle::Process(process.clone()));
    let open = |end: Option<NamedPipeServer>, readable: bool| {
        end.map(|p| Stream::start(core, core.next_id(), Owned::Pipe(p), FdKind::Pipe, readable).map(|s| s.id)).transpose()
    };
    let stdin = open(parent_in, false);
    let stdout = open(parent_out, true);
    let stderr = open(parent_err, true);
    core.handle.spawn(reap(core.clone(), process, child));
    Ok(Spawned { id, pid, stdin: stdin?, stdout: stdout?, stderr: stderr? })
}

async fn reap(core: Arc<Core>, process: Arc<Process>, mut child: Child) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = process.kill.notified() => {
                // Already gone: the wait reports it next.
                let _ = child.start_kill();
            }
        }
    };
    // No exit code (the wait itself failed): 255, as a child reaped elsewhere reports on Unix.
    let code = status.ok().and_then(|s| s.code()).unwrap_or(255);
    *process.returncode.lock().unwrap() = Some(code);
    core.unregister(process.id);
    core.queue.push(Kind::ProcessExited, process.id, code as u32, 0);
}
