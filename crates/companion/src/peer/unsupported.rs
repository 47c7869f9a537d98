//! Systems where we read no socket-owner table yet (macOS, Windows): the
//! companion cannot tell who is at the other end, checks nothing, and says
//! "unknown program" rather than guess.

use std::net::SocketAddr;

use super::program::{Listener, Owner, Program};

pub const ENFORCED: bool = false;

pub fn own_uid() -> Option<u32> {
    None
}

pub fn connection_owner(_local: SocketAddr, _remote: SocketAddr) -> Owner {
    Owner::Unchecked
}

pub fn connection_program(_local: SocketAddr, _remote: SocketAddr) -> Option<Program> {
    None
}

pub fn listener(_port: u16) -> Listener {
    Listener::Unknown
}

pub fn listener_uid(_addr: SocketAddr) -> Option<u32> {
    None
}
