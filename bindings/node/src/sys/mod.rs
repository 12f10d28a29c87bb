//! What differs between operating systems on this side: how a socket number is borrowed and asked for
//! its options, the socket constants JavaScript sees, where big `allocBuffer` slabs come from, and (on
//! Windows) the functions whose features cannot exist there, which throw an `Error` naming Windows.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
