//! Child processes: asyncio's `subprocess_exec` / `subprocess_shell`.
//!
//! A child is spawned with `std::process::Command` (exec failures such as `ENOENT` come back from the
//! spawn itself, before anything is reported). Its piped stdio ends become pipe [`Stream`]s with ids
//! of their own, and a task per child waits for it to exit and reaps it, so no child is left a zombie
//! whether or not anyone asks for its status.
//!
//! Waiting uses a descriptor readable once the child has exited (a pidfd on Linux, a kqueue on macOS:
//! [`crate::sys::exit_fd`]), rather than a `SIGCHLD` handler: the host
//! (Node's libuv) installs its own `SIGCHLD` handler, which would displace ours. The child is reaped
//! under the same lock that signals are sent under, so a signal can never reach a recycled pid.

use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio as StdStdio};
use std::sync::{Arc, Mutex};

use tokio::io::Interest;

use crate::events::Kind;
use crate::pipe::{self, PipeEnd};
use crate::registry::Handle;
use crate::{Core, Engine};

/// Where one of the child's standard streams goes (Python's `PIPE`, `DEVNULL`, `STDOUT`, `None`, fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio {
    /// A new pipe to a transport of ours.
    Pipe,
    /// `/dev/null`.
    DevNull,
    /// This process's own stream.
    Inherit,
    /// A duplicate of this descriptor (the caller keeps the original).
    Fd(RawFd),
    /// stderr only: wherever stdout goes.
    Stdout,
}

#[derive(Clone, Debug)]
pub struct SpawnOptions {
    pub program: String,
    /// Arguments after the program name.
    pub args: Vec<String>,
    pub cwd: Option<String>,
    /// The child's whole environment; `None` inherits this process's.
    pub env: Option<Vec<(String, String)>>,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// `setsid()` in the child.
    pub start_new_session: bool,
    /// `setpgid(0, pgid)` in the child (0: a new group led by the child).
    pub process_group: Option<i32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl SpawnOptions {
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        SpawnOptions {
            program: program.into(),
            args,
            cwd: None,
            env: None,
            stdin: Stdio::Pipe,
            stdout: Stdio::Pipe,
            stderr: Stdio::Pipe,
            start_new_session: false,
            process_group: None,
            uid: None,
            gid: None,
        }
    }
}

/// What a spawn made: the process id (for events and signals), the pid, and the stream ids of the
/// piped stdio ends.
#[derive(Clone, Copy, Debug)]
pub struct Spawned {
    pub id: u32,
    pub pid: u32,
    pub stdin: Option<u32>,
    pub stdout: Option<u32>,
    pub stderr: Option<u32>,
}

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

impl Engine {
    /// Spawns a child process. Its exit is reported as [`Kind::ProcessExited`] on the returned id.
    pub fn spawn(&self, opts: &SpawnOptions) -> io::Result<Spawned> {
        spawn(&self.core, opts)
    }

    /// The child process `id`, until it is reaped.
    pub fn process(&self, id: u32) -> Option<Arc<Process>> {
        self.core.find(id, |h| if let Handle::Process(p) = h { Some(p.clone()) } else { None })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::tests::collect;

    fn sh(cmd: &str) -> SpawnOptions {
        SpawnOptions::new("/bin/sh", vec!["-c".into(), cmd.into()])
    }

    fn exit_code(engine: &Engine, id: u32) -> i32 {
        let (recs, _) = collect(engine, |recs, _| recs.iter().any(|r| r[0] == Kind::ProcessExited as u32 && r[1] == id));
        recs.iter().find(|r| r[0] == Kind::ProcessExited as u32).unwrap()[2] as i32
    }

    #[test]
    fn exit_codes_and_output() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let mut o = sh("echo out; echo err >&2; exit 3");
        o.stdin = Stdio::DevNull;
        let s = engine.spawn(&o).unwrap();
        assert!(s.stdin.is_none());
        let (out, err) = (s.stdout.unwrap(), s.stderr.unwrap());
        for id in [out, err] {
            engine.stream(id).unwrap().start_reading(false);
        }
        let (recs, payload) = collect(&engine, |recs, _| {
            recs.iter().filter(|r| r[0] == Kind::Eof as u32).count() == 2 && recs.iter().any(|r| r[0] == Kind::ProcessExited as u32)
        });
        let exited = recs.iter().find(|r| r[0] == Kind::ProcessExited as u32).unwrap();
        assert_eq!(exited[1], s.id);
        assert_eq!(exited[2] as i32, 3);
        let mut offset = 0;
        let (mut got_out, mut got_err) = (Vec::new(), Vec::new());
        for r in recs.iter().filter(|r| r[0] == Kind::Data as u32) {
            let bytes = &payload[offset..offset + r[2] as usize];
            offset += r[2] as usize;
            if r[1] == out { got_out.extend_from_slice(bytes) } else if r[1] == err { got_err.extend_from_slice(bytes) }
        }
        assert_eq!(got_out, b"out\n");
        assert_eq!(got_err, b"err\n");
        assert_eq!(engine.process(s.id).map(|p| p.returncode()), None, "reaped and forgotten");
    }

    #[test]
    fn killed_child_reports_minus_signal_and_esrch_after() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let mut o = SpawnOptions::new("sleep", vec!["30".into()]);
        o.stdin = Stdio::DevNull;
        o.stdout = Stdio::DevNull;
        o.stderr = Stdio::Stdout;
        let s = engine.spawn(&o).unwrap();
        let p = engine.process(s.id).unwrap();
        p.send_signal(libc::SIGKILL).unwrap();
        assert_eq!(exit_code(&engine, s.id), -libc::SIGKILL);
        assert_eq!(p.send_signal(libc::SIGTERM).unwrap_err().raw_os_error(), Some(libc::ESRCH));
        // SAFETY: kill with signal 0 only checks that the pid exists.
        assert_ne!(unsafe { libc::kill(s.pid as i32, 0) }, 0, "no zombie left");
    }

    #[test]
    fn missing_program_fails_at_spawn() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let err = engine.spawn(&SpawnOptions::new("/nonexistent/program", vec![])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(engine.open_handles(), 0);
    }

    #[test]
    fn stdin_pipe_reaches_the_child() {
        let engine = Engine::new(Box::new(|| {}), 1).unwrap();
        let s = engine.spawn(&SpawnOptions::new("cat", vec![])).unwrap();
        engine.stream(s.stdout.unwrap()).unwrap().start_reading(false);
        engine.stream(s.stderr.unwrap()).unwrap().start_reading(false);
        let stdin = engine.stream(s.stdin.unwrap()).unwrap();
        stdin.write(&[b"round trip"]);
        stdin.write_eof();
        // The descriptor closes when the last holder of the stream lets go.
        drop(stdin);
        let (_, payload) = collect(&engine, |recs, _| recs.iter().any(|r| r[0] == Kind::ProcessExited as u32 && r[1] == s.id) && recs.iter().any(|r| r[0] == Kind::Eof as u32));
        assert_eq!(payload, b"round trip");
    }
}
