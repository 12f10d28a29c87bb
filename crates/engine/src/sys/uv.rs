//! libuv's error numbers on Windows, and the translation of Windows' error codes into them. Node names
//! an error by libuv's number (`util.getSystemErrorName`), which on Unix is the negated errno and on
//! Windows a number of libuv's own (`uv/errno.h`: `UV__EPIPE` is -4047). Windows' engine reports these
//! (`super::windows`); compiled everywhere so that the table's tests run on Linux.
#![cfg_attr(unix, allow(dead_code))]

use std::io;

/// The errors the engine reports, as libuv numbers them on Windows (`uv/errno.h`, positive): the host
/// turns them into Node's codes with `util.getSystemErrorName`, which knows libuv's numbers only.
pub mod errno {
    pub const EADDRINUSE: i32 = 4091;
    pub const EADDRNOTAVAIL: i32 = 4090;
    pub const EAFNOSUPPORT: i32 = 4089;
    pub const EAGAIN: i32 = 4088;
    pub const EALREADY: i32 = 4084;
    pub const EBADF: i32 = 4083;
    pub const EBUSY: i32 = 4082;
    pub const ECANCELED: i32 = 4081;
    pub const ECONNABORTED: i32 = 4079;
    pub const ECONNREFUSED: i32 = 4078;
    pub const ECONNRESET: i32 = 4077;
    pub const EDESTADDRREQ: i32 = 4076;
    pub const EEXIST: i32 = 4075;
    pub const EFAULT: i32 = 4074;
    pub const EHOSTUNREACH: i32 = 4073;
    pub const EINTR: i32 = 4072;
    pub const EINVAL: i32 = 4071;
    pub const EIO: i32 = 4070;
    pub const EISCONN: i32 = 4069;
    pub const EMFILE: i32 = 4066;
    pub const EMSGSIZE: i32 = 4065;
    pub const ENAMETOOLONG: i32 = 4064;
    pub const ENETDOWN: i32 = 4063;
    pub const ENETUNREACH: i32 = 4062;
    pub const ENFILE: i32 = 4061;
    pub const ENOBUFS: i32 = 4060;
    pub const ENOENT: i32 = 4058;
    pub const ENOMEM: i32 = 4057;
    pub const ENOSYS: i32 = 4054;
    pub const ENOTCONN: i32 = 4053;
    pub const ENOTSOCK: i32 = 4050;
    pub const ENOTSUP: i32 = 4049;
    pub const EPERM: i32 = 4048;
    pub const EPIPE: i32 = 4047;
    pub const EPROTO: i32 = 4046;
    pub const EPROTONOSUPPORT: i32 = 4045;
    pub const EPROTOTYPE: i32 = 4044;
    pub const ESRCH: i32 = 4040;
    pub const ETIMEDOUT: i32 = 4039;
    pub const EACCES: i32 = 4092;
}

/// libuv's number for a Windows error code (`uv_translate_sys_error` of libuv 1.x, the one Node ships:
/// the cases sockets and pipes meet), or for the error's kind when the code is none of those; `EIO`
/// otherwise. Where libuv says `UNKNOWN` (`WSAENETDOWN`) or `EOF` (`ERROR_BROKEN_PIPE`, which a write
/// meets when the reader is gone), the engine gives the errno a Unix system would.
pub fn of_windows(code: Option<i32>, kind: io::ErrorKind) -> u32 {
    use errno::*;
    let by_code = match code {
        // Already libuv's: an error the engine made itself (`from_raw_os_error(errno::EPIPE)`). No
        // Windows code a socket or pipe meets lies in libuv's range.
        Some(n @ 4000..=4095) => n,
        Some(10013) => EACCES,                      // WSAEACCES
        Some(10004) => ECANCELED,                   // WSAEINTR (a blocking call cancelled), as libuv
        Some(10009) => EBADF,                       // WSAEBADF
        Some(10014) => EFAULT,                      // WSAEFAULT
        Some(10022) | Some(87) => EINVAL,           // WSAEINVAL, ERROR_INVALID_PARAMETER
        Some(10024) => EMFILE,                      // WSAEMFILE
        Some(10035) => EAGAIN,                      // WSAEWOULDBLOCK
        Some(10037) => EALREADY,                    // WSAEALREADY
        Some(10038) => ENOTSOCK,                    // WSAENOTSOCK
        Some(10039) => EDESTADDRREQ,                // WSAEDESTADDRREQ
        Some(10040) => EMSGSIZE,                    // WSAEMSGSIZE
        Some(10041) => EPROTOTYPE,                  // WSAEPROTOTYPE
        Some(10043) => EPROTONOSUPPORT,             // WSAEPROTONOSUPPORT
        Some(10046) => EINVAL,                      // WSAEPFNOSUPPORT, as libuv
        Some(10045) => ENOTSUP,                     // WSAEOPNOTSUPP
        Some(10047) => EAFNOSUPPORT,                // WSAEAFNOSUPPORT
        Some(10048) => EADDRINUSE,                  // WSAEADDRINUSE
        Some(10049) => EADDRNOTAVAIL,               // WSAEADDRNOTAVAIL
        Some(10050) => ENETDOWN,                    // WSAENETDOWN
        Some(10051) | Some(1231) => ENETUNREACH,    // WSAENETUNREACH, ERROR_NETWORK_UNREACHABLE
        Some(10053) | Some(1236) => ECONNABORTED,   // WSAECONNABORTED, ERROR_CONNECTION_ABORTED
        Some(10054) | Some(64) => ECONNRESET,       // WSAECONNRESET, ERROR_NETNAME_DELETED
        Some(10055) => ENOBUFS,                     // WSAENOBUFS
        Some(10056) => EISCONN,                     // WSAEISCONN
        Some(10057) => ENOTCONN,                    // WSAENOTCONN
        // WSAESHUTDOWN, ERROR_BROKEN_PIPE, ERROR_BAD_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED
        Some(10058) | Some(109) | Some(230) | Some(232) | Some(233) => EPIPE,
        Some(231) => EBUSY,                         // ERROR_PIPE_BUSY
        Some(10060) | Some(121) => ETIMEDOUT,       // WSAETIMEDOUT, ERROR_SEM_TIMEOUT
        Some(10061) | Some(1225) => ECONNREFUSED,   // WSAECONNREFUSED, ERROR_CONNECTION_REFUSED
        Some(10065) | Some(1232) => EHOSTUNREACH,   // WSAEHOSTUNREACH, ERROR_HOST_UNREACHABLE
        // ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, ERROR_INVALID_DRIVE, ERROR_INVALID_NAME,
        // ERROR_MOD_NOT_FOUND, ERROR_BAD_PATHNAME, ERROR_ENVVAR_NOT_FOUND, ERROR_DIRECTORY (a spawn's
        // cwd that is no directory: Node's `spawn ENOENT`)
        Some(2) | Some(3) | Some(15) | Some(123) | Some(126) | Some(161) | Some(203) | Some(267) => ENOENT,
        Some(4) => EMFILE,                          // ERROR_TOO_MANY_OPEN_FILES
        Some(50) => ENOTSUP,                        // ERROR_NOT_SUPPORTED
        Some(80) | Some(183) => EEXIST,             // ERROR_FILE_EXISTS, ERROR_ALREADY_EXISTS
        Some(206) => ENAMETOOLONG,                  // ERROR_FILENAME_EXCED_RANGE
        Some(32) | Some(33) => EBUSY,               // ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION
        Some(998) => EACCES,                        // ERROR_NOACCESS
        Some(1314) => EPERM,                        // ERROR_PRIVILEGE_NOT_HELD
        Some(5) => EPERM,                           // ERROR_ACCESS_DENIED
        Some(6) => EBADF,                           // ERROR_INVALID_HANDLE
        Some(8) | Some(14) => ENOMEM,               // ERROR_NOT_ENOUGH_MEMORY, ERROR_OUTOFMEMORY
        Some(995) => ECANCELED,                     // ERROR_OPERATION_ABORTED
        _ => 0,
    };
    if by_code != 0 {
        return by_code as u32;
    }
    (match kind {
        io::ErrorKind::ConnectionRefused => ECONNREFUSED,
        io::ErrorKind::ConnectionReset => ECONNRESET,
        io::ErrorKind::ConnectionAborted => ECONNABORTED,
        io::ErrorKind::NotConnected => ENOTCONN,
        io::ErrorKind::AddrInUse => EADDRINUSE,
        io::ErrorKind::AddrNotAvailable => EADDRNOTAVAIL,
        io::ErrorKind::BrokenPipe => EPIPE,
        io::ErrorKind::WouldBlock => EAGAIN,
        io::ErrorKind::InvalidInput => EINVAL,
        io::ErrorKind::TimedOut => ETIMEDOUT,
        io::ErrorKind::NotFound => ENOENT,
        io::ErrorKind::PermissionDenied => EPERM,
        io::ErrorKind::Unsupported => ENOTSUP,
        io::ErrorKind::OutOfMemory => ENOMEM,
        _ => EIO,
    }) as u32
}

#[cfg(test)]
mod tests {
    use super::errno::*;
    use super::of_windows;
    use std::io::ErrorKind;

    #[test]
    fn windows_codes_become_libuvs_numbers_and_kinds_stand_in_for_unknown_codes() {
        assert_eq!(of_windows(Some(10061), ErrorKind::Other), ECONNREFUSED as u32); // WSAECONNREFUSED
        assert_eq!(of_windows(Some(10054), ErrorKind::Other), ECONNRESET as u32); // WSAECONNRESET
        assert_eq!(of_windows(Some(109), ErrorKind::Other), EPIPE as u32); // ERROR_BROKEN_PIPE
        assert_eq!(of_windows(Some(10035), ErrorKind::Other), EAGAIN as u32); // WSAEWOULDBLOCK
        assert_eq!(of_windows(Some(2), ErrorKind::Other), ENOENT as u32); // ERROR_FILE_NOT_FOUND
        assert_eq!(of_windows(Some(424242), ErrorKind::TimedOut), ETIMEDOUT as u32);
        assert_eq!(of_windows(None, ErrorKind::Unsupported), ENOTSUP as u32);
        assert_eq!(of_windows(None, ErrorKind::Other), EIO as u32);
        // What the engine made from its own numbers goes through unchanged.
        for n in [EPIPE, ESRCH, ENOSYS, EINVAL, ECONNRESET] {
            assert_eq!(of_windows(Some(n), ErrorKind::Other), n as u32);
        }
    }

    /// Codes whose libuv name differs from the obvious one, or that only overlapped I/O (named pipes)
    /// reports: each as `uv_translate_sys_error` (libuv 1.x, src/win/error.c) names it.
    #[test]
    fn codes_as_libuv_translates_them() {
        let cases = [
            (10004, ECANCELED),      // WSAEINTR: libuv says ECANCELED, not EINTR
            (10037, EALREADY),       // WSAEALREADY
            (10043, EPROTONOSUPPORT), // WSAEPROTONOSUPPORT
            (10046, EINVAL),         // WSAEPFNOSUPPORT
            (1231, ENETUNREACH),     // ERROR_NETWORK_UNREACHABLE
            (1236, ECONNABORTED),    // ERROR_CONNECTION_ABORTED
            (1225, ECONNREFUSED),    // ERROR_CONNECTION_REFUSED
            (64, ECONNRESET),        // ERROR_NETNAME_DELETED
            (230, EPIPE),            // ERROR_BAD_PIPE
            (232, EPIPE),            // ERROR_NO_DATA: a write to a pipe whose reader left
            (233, EPIPE),            // ERROR_PIPE_NOT_CONNECTED
            (231, EBUSY),            // ERROR_PIPE_BUSY
            (5, EPERM),              // ERROR_ACCESS_DENIED: EPERM on libuv 1.x (EACCES only on its master)
            (267, ENOENT),           // ERROR_DIRECTORY: a spawn's cwd that is no directory
            (123, ENOENT),           // ERROR_INVALID_NAME
            (206, ENAMETOOLONG),     // ERROR_FILENAME_EXCED_RANGE
            (4, EMFILE),             // ERROR_TOO_MANY_OPEN_FILES
            (32, EBUSY),             // ERROR_SHARING_VIOLATION
        ];
        for (code, want) in cases {
            assert_eq!(of_windows(Some(code), ErrorKind::Other), want as u32, "Windows error {code}");
        }
    }

    /// The numbers are libuv's: `uv/errno.h` (Node's headers, where this machine has them) defines each
    /// for Windows as `# define UV__E... (-4xxx)`.
    #[test]
    fn the_numbers_are_those_of_libuvs_header() {
        let Ok(header) = std::fs::read_to_string("/usr/include/node/uv/errno.h") else {
            eprintln!("no /usr/include/node/uv/errno.h here: the numbers are not compared");
            return;
        };
        let uv = |name: &str| -> i32 {
            let line = header.lines().find(|l| l.trim_start().starts_with(&format!("# define UV__{name} (-"))).unwrap_or_else(|| panic!("UV__{name} in uv/errno.h"));
            -line.split('(').nth(1).unwrap().trim_end_matches(')').parse::<i32>().unwrap()
        };
        let ours = [
            ("EADDRINUSE", EADDRINUSE), ("EADDRNOTAVAIL", EADDRNOTAVAIL), ("EAFNOSUPPORT", EAFNOSUPPORT), ("EAGAIN", EAGAIN),
            ("EALREADY", EALREADY), ("EBUSY", EBUSY), ("EPROTONOSUPPORT", EPROTONOSUPPORT),
            ("EBADF", EBADF), ("ECANCELED", ECANCELED), ("ECONNABORTED", ECONNABORTED), ("ECONNREFUSED", ECONNREFUSED),
            ("ECONNRESET", ECONNRESET), ("EDESTADDRREQ", EDESTADDRREQ), ("EEXIST", EEXIST), ("EFAULT", EFAULT),
            ("EHOSTUNREACH", EHOSTUNREACH), ("EINTR", EINTR), ("EINVAL", EINVAL), ("EIO", EIO), ("EISCONN", EISCONN),
            ("EMFILE", EMFILE), ("EMSGSIZE", EMSGSIZE), ("ENAMETOOLONG", ENAMETOOLONG), ("ENETDOWN", ENETDOWN),
            ("ENETUNREACH", ENETUNREACH), ("ENFILE", ENFILE), ("ENOBUFS", ENOBUFS), ("ENOENT", ENOENT), ("ENOMEM", ENOMEM),
            ("ENOSYS", ENOSYS), ("ENOTCONN", ENOTCONN), ("ENOTSOCK", ENOTSOCK), ("ENOTSUP", ENOTSUP), ("EPERM", EPERM),
            ("EPIPE", EPIPE), ("EPROTO", EPROTO), ("EPROTOTYPE", EPROTOTYPE), ("ESRCH", ESRCH), ("ETIMEDOUT", ETIMEDOUT),
            ("EACCES", EACCES),
        ];
        for (name, n) in ours {
            assert_eq!(n, uv(name), "{name}");
        }
    }
}
