//! Child processes: spawn, signals, and the stream ids of their stdio pipes.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use protoloop_engine::subprocess::{signal_numbers, SpawnOptions, Stdio};

use crate::{engine, neg_errno};

/// How JavaScript names a stdio choice: Python's `PIPE` (-1), `STDOUT` (-2), `DEVNULL` (-3), -4 for
/// inherit (Python's `None`), or a descriptor (>= 0).
fn stdio(code: i32) -> Stdio {
    match code {
        -1 => Stdio::Pipe,
        -2 => Stdio::Stdout,
        -3 => Stdio::DevNull,
        fd if fd >= 0 => Stdio::Fd(fd as _),
        _ => Stdio::Inherit,
    }
}

#[napi(object)]
pub struct SpawnRequest {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    /// `KEY=value` strings; absent: inherit this process's environment.
    pub env: Option<Vec<String>>,
    pub stdin: i32,
    pub stdout: i32,
    pub stderr: i32,
    pub start_new_session: bool,
    pub process_group: Option<i32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Windows: the arguments go onto the command line unquoted (`subprocessShell`'s `cmd.exe` line).
    pub verbatim_args: Option<bool>,
}

/// `errno` is 0 on success, else negative and nothing was started. Stream ids are -1 where not piped.
#[napi(object)]
pub struct SpawnResult {
    pub errno: i64,
    pub id: u32,
    pub pid: u32,
    pub stdin: i64,
    pub stdout: i64,
    pub stderr: i64,
}

#[napi(catch_unwind)]
pub fn spawn(req: SpawnRequest) -> Result<SpawnResult> {
    let mut opts = SpawnOptions::new(req.program, req.args);
    opts.cwd = req.cwd;
    opts.env = req.env.map(|vars| {
        vars.into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect()
    });
    opts.stdin = stdio(req.stdin);
    opts.stdout = stdio(req.stdout);
    opts.stderr = stdio(req.stderr);
    opts.start_new_session = req.start_new_session;
    opts.process_group = req.process_group;
    opts.uid = req.uid;
    opts.gid = req.gid;
    opts.verbatim_args = req.verbatim_args.unwrap_or(false);
    let id_of = |s: Option<u32>| s.map_or(-1, |id| id as i64);
    Ok(match engine()?.spawn(&opts) {
        // A feature the platform lacks (Windows: a descriptor as stdio) is an Error, not an errno.
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return Err(Error::from_reason(e.to_string())),
        Ok(s) => SpawnResult { errno: 0, id: s.id, pid: s.pid, stdin: id_of(s.stdin), stdout: id_of(s.stdout), stderr: id_of(s.stderr) },
        Err(e) => SpawnResult { errno: neg_errno(&e), id: 0, pid: 0, stdin: -1, stdout: -1, stderr: -1 },
    })
}

/// Sends signal `sig` to child `id`: 0, or a negative errno (`-ESRCH` once it has been reaped).
#[napi(catch_unwind)]
pub fn send_signal(id: u32, sig: i32) -> Result<i64> {
    Ok(match engine()?.process(id) {
        None => -(protoloop_engine::sys::errno::ESRCH as i64),
        Some(p) => match p.send_signal(sig) {
            Ok(()) => 0,
            Err(e) => neg_errno(&e),
        },
    })
}

/// Signal numbers by name (`SIGTERM` → 15) on this platform.
#[napi(catch_unwind)]
pub fn signal_constants() -> std::collections::HashMap<String, i32> {
    signal_numbers().into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
