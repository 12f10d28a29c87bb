//! Child processes on Unix: `fork`/`exec` through `std::process::Command`, stdio over pipes, exits
//! watched through a descriptor (a pidfd on Linux, a kqueue on macOS: [`super::exit_fd`]) rather than
//! a `SIGCHLD` handler, which would displace the host's (Node's libuv installs its own). The child is
//! reaped under the same lock that signals are sent under, so a signal can never reach a recycled pid.

use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio as StdStdio};
use std::sync::{Arc, Mutex};

use tokio::io::Interest;

use crate::events::Kind;
use crate::pipe::{self, PipeEnd};
use crate::subprocess::{SpawnOptions, Spawned, Stdio};
use crate::Core;

pub struct Process {
    pub id: u32,
    pub pid: u32,
    /// The return code once reaped. Reaping and signalling both hold this lock.
    returncode: Mutex<Option<i32>>,
}

impl Process {
    pub fn returncode(&self) -> Option<i32> {
        *self.returncode.lock().unwrap()
    }

    /// Sends `sig`; `ESRCH` once the child has been reaped.
    pub fn send_signal(&self, sig: i32) -> io::Result<()> {
        let rc = self.returncode.lock().unwrap();
        if rc.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: kill(2) takes no memory. The pid is our unreaped child (checked under the lock the
        // reaper takes), so it cannot have been recycled.
        if unsafe { libc::kill(self.pid as libc::pid_t, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reaps the child if it has exited; its return code then.
    fn try_reap(&self) -> io::Result<Option<i32>> {
        self.reap(libc::WNOHANG)
    }

    /// Teardown of the engine (see `Core::tear_down`): a child still running is killed, as asyncio's
    /// `close()` kills it, and reaped, so that neither it nor a zombie outlives the engine. Blocks
    /// until the killed child is gone, which SIGKILL makes prompt.
    pub(crate) fn kill_and_reap(&self) {
        let _ = self.send_signal(libc::SIGKILL);
        if self.reap(0).is_err() {
            // Reaped elsewhere in the process (a `waitpid(-1)`): nothing is left to wait for.
            *self.returncode.lock().unwrap() = Some(255);
        }
    }

    /// `waitpid` with `flags` under the signal lock; the return code once reaped.
    fn reap(&self, flags: libc::c_int) -> io::Result<Option<i32>> {
        let mut rc = self.returncode.lock().unwrap();
        if rc.is_some() {
            return Ok(*rc);
        }
        let mut status: libc::c_int = 0;
        let r = loop {
            // SAFETY: waitpid writes the status into a local we own.
            let r = unsafe { libc::waitpid(self.pid as libc::pid_t, &mut status, flags) };
            if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break r;
            }
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            return Ok(None);
        }
        let code = if libc::WIFSIGNALED(status) { -libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) };
        *rc = Some(code);
        Ok(*rc)
    }
}

/// This process's descriptor `fd` for the child to inherit. Passed as a duplicate, not left to plain
/// inheritance: a host may hold its stdio close-on-exec (Node does), and the child's `dup2` onto 0-2
/// clears that flag. A closed descriptor stays closed in the child.
fn inherit(fd: RawFd) -> StdStdio {
    dup(fd).map(StdStdio::from).unwrap_or_else(|_| StdStdio::inherit())
}

/// The child's end for `what`, and the parent's end when it is a pipe (`parent_reads`: stdout/stderr).
fn child_end(what: Stdio, parent_reads: bool, target: RawFd) -> io::Result<(StdStdio, Option<OwnedFd>)> {
    Ok(match what {
        Stdio::Pipe => {
            let (r, w) = pipe::pipe()?;
            if parent_reads {
                (StdStdio::from(w), Some(r))
            } else {
                (StdStdio::from(r), Some(w))
            }
        }
        Stdio::DevNull => (StdStdio::null(), None),
        Stdio::Inherit => (inherit(target), None),
        Stdio::Fd(fd) => (StdStdio::from(dup(fd)?), None),
        Stdio::Stdout => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    })
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes no memory; an invalid fd only makes it fail.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if d < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl just created this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}

/// Spawns the child and starts its pipes and its reaper.
pub(crate) fn spawn(core: &Arc<Core>, opts: &SpawnOptions) -> io::Result<Spawned> {
    if opts.stdin == Stdio::Stdout || opts.stdout == Stdio::Stdout {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut cmd = Command::new(&opts.program);
    cmd.args(&opts.args);
    if let Some(cwd) = &opts.cwd {
        cmd.current_dir(cwd);
    }
    if let Some(env) = &opts.env {
        cmd.env_clear();
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
    }
    let (child_in, parent_in) = child_end(opts.stdin, false, 0)?;
    // stderr=STDOUT needs the child's stdout end twice.
    let (out_fd, parent_out): (Option<OwnedFd>, Option<OwnedFd>) = match opts.stdout {
        Stdio::Pipe => {
            let (r, w) = pipe::pipe()?;
            (Some(w), Some(r))
        }
        Stdio::Fd(fd) => (Some(dup(fd)?), None),
        Stdio::Inherit => (None, None),
        _ => (None, None),
    };
    let (child_err, parent_err) = match opts.stderr {
        Stdio::Stdout => match (&out_fd, opts.stdout) {
            (Some(fd), _) => (StdStdio::from(fd.try_clone()?), None),
            (None, Stdio::DevNull) => (StdStdio::null(), None),
            (None, _) => (inherit(1), None),
        },
        other => child_end(other, true, 2)?,
    };
    let child_out = match (out_fd, opts.stdout) {
        (Some(fd), _) => StdStdio::from(fd),
        (None, Stdio::DevNull) => StdStdio::null(),
        (None, _) => inherit(1),
    };
    cmd.stdin(child_in).stdout(child_out).stderr(child_err);
    if let Some(pgid) = opts.process_group {
        cmd.process_group(pgid);
    }
    if let Some(uid) = opts.uid {
        cmd.uid(uid);
    }
    if let Some(gid) = opts.gid {
        cmd.gid(gid);
    }
    if opts.start_new_session {
        // SAFETY: the closure runs in the forked child before exec and calls only setsid(2), which is
        // async-signal-safe; it touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| if libc::setsid() < 0 { Err(io::Error::last_os_error()) } else { Ok(()) });
        }
    }
    let child = cmd.spawn()?;
    // The child's ends were moved into `cmd`; drop them now so that only the child holds them.
    drop(cmd);
    let pid = child.id();
    // Dropping a std `Child` neither waits nor kills: the reaper below owns the pid from here.
    drop(child);

    let id = core.next_id();
    let process = Arc::new(Process { id, pid, returncode: Mutex::new(None) });
    core.register(id, crate::registry::Handle::Process(process.clone()));
    let open = |fd: Option<OwnedFd>, end| fd.map(|fd| pipe::open(core, fd, end).map(|s| s.id)).transpose();
    let stdin = open(parent_in, PipeEnd::Write);
    let stdout = open(parent_out, PipeEnd::Read);
    let stderr = open(parent_err, PipeEnd::Read);
    core.handle.spawn(reap(core.clone(), process));
    Ok(Spawned { id, pid, stdin: stdin?, stdout: stdout?, stderr: stderr? })
}

async fn reap(core: Arc<Core>, process: Arc<Process>) {
    let pidfd = crate::sys::exit_fd(process.pid).and_then(|fd| {
        let _rt = core.handle.enter();
        crate::register(fd, Interest::READABLE)
    });
    let code = loop {
        match process.try_reap() {
            Ok(Some(code)) => break code,
            Ok(None) => {}
            // Someone else reaped our child (a `waitpid(-1)` elsewhere in the process): its status is lost.
            Err(_) => {
                *process.returncode.lock().unwrap() = Some(255);
                break 255;
            }
        }
        match &pidfd {
            Ok(afd) => match afd.readable().await {
                Ok(mut g) => g.clear_ready(),
                Err(_) => {
                    let pid = process.pid;
                    let _ = tokio::task::spawn_blocking(move || crate::sys::wait_exited_blocking(pid)).await;
                }
            },
            Err(_) => {
                let pid = process.pid;
                let _ = tokio::task::spawn_blocking(move || crate::sys::wait_exited_blocking(pid)).await;
            }
        }
    };
    // The pidfd closes before the exit is reported, so a host that saw the exit sees no descriptor left.
    drop(pidfd);
    core.unregister(process.id);
    core.queue.push(Kind::ProcessExited, process.id, code as u32, 0);
}

/// Signal numbers by name, for `sendSignal('SIGTERM')`.
pub fn signal_numbers() -> HashMap<&'static str, i32> {
    macro_rules! table {
        ($($name:ident),* $(,)?) => { [$((stringify!($name), libc::$name)),*].into_iter().collect() };
    }
    table!(
        SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2,
        SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU,
        SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGSYS,
    )
}

