//! Who is at the other end of a loopback socket: the OS user owning the
//! peer of an accepted connection, and the program (pid, executable) behind
//! a connection or a listening port. Loopback is shared by every program and
//! every OS user of the machine, so this is what tells the person's own
//! programs from everyone else's. Every lookup reads the OS's tables and
//! blocks: call it off the async runtime.

use std::net::SocketAddr;

pub use program::{known_app, known_app_named, Listener, Owner, Program};

mod program;

#[cfg(target_os = "linux")]
mod diag;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;
#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
use unsupported as os;

/// Whether this OS can tell who owns a loopback connection. Where it cannot,
/// connections are not checked (docs/security.md says so).
pub const ENFORCED: bool = os::ENFORCED;

/// The owner of the peer of a connection accepted at `local` from `remote`.
pub fn connection_owner(local: SocketAddr, remote: SocketAddr) -> Owner {
    os::connection_owner(local, remote)
}

/// The program at the peer end of a connection accepted at `local` from
/// `remote`, when it runs as our user and the OS tells.
pub fn connection_program(local: SocketAddr, remote: SocketAddr) -> Option<Program> {
    os::connection_program(local, remote)
}

/// Who listens on `port` on a loopback (or every) address.
pub fn listener(port: u16) -> Listener {
    os::listener(port)
}

/// The uid owning the socket listening at exactly `addr`, when the OS tells.
pub fn listener_uid(addr: SocketAddr) -> Option<u32> {
    os::listener_uid(addr)
}

/// The uid this process runs as, when the OS tells.
pub fn own_uid() -> Option<u32> {
    os::own_uid()
}
