//! Child processes: asyncio's `subprocess_exec` / `subprocess_shell`.
//!
//! A child is spawned at once (exec failures such as `ENOENT` come back from the spawn itself, before
//! anything is reported). Its piped stdio ends become pipe [`crate::Stream`]s with ids of their own,
//! and a task per child waits for it to exit and reaps it, so no child is left a zombie whether or not
//! anyone asks for its status. How is the system's: `crate::sys::unix_process` (`fork`/`exec`, pipes,
//! pidfd or kqueue) and `crate::sys::windows_process` (`tokio::process`, named pipes).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use crate::registry::Handle;
use crate::sys::process;
use crate::Engine;

pub use crate::sys::process::Process;

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
    Fd(crate::sys::RawFd),
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
    /// Windows: `args` go onto the command line as they are, unquoted (what `cmd.exe /s /c "..."`
    /// needs, as Node's `windowsVerbatimArguments`); Unix passes an argument vector and ignores it.
    pub verbatim_args: bool,
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
            verbatim_args: false,
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

impl Engine {
    /// Spawns a child process. Its exit is reported as [`Kind::ProcessExited`] on the returned id.
    pub fn spawn(&self, opts: &SpawnOptions) -> io::Result<Spawned> {
        process::spawn(&self.core, opts)
    }

    /// The child process `id`, until it is reaped.
    pub fn process(&self, id: u32) -> Option<Arc<Process>> {
        self.core.find(id, |h| if let Handle::Process(p) = h { Some(p.clone()) } else { None })
    }
}

/// Signal numbers by name, for `sendSignal('SIGTERM')` (on Windows the few it can send).
pub fn signal_numbers() -> HashMap<&'static str, i32> {
    process::signal_numbers()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::events::Kind;
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
