//! Linux: the socket tables in `/proc/net/tcp{,6}` give each socket's owner
//! uid and inode; a process's `/proc/PID/fd` links name the socket inodes it
//! holds. Only our own user's processes can be read, which is all we name.

use std::net::SocketAddr;

use procfs::net::{TcpNetEntry, TcpState};
use procfs::process::{FDTarget, Process};

use super::program::{known_app, Listener, Owner, Program};

pub const ENFORCED: bool = true;

fn sockets() -> Option<Vec<TcpNetEntry>> {
    let mut all = procfs::net::tcp().ok()?;
    // A machine without IPv6 has no tcp6 table; that is not a failure.
    all.extend(procfs::net::tcp6().unwrap_or_default());
    Some(all)
}

/// The peer's own socket: it sits at the remote end, facing us.
fn peer_socket(local: SocketAddr, remote: SocketAddr) -> Option<TcpNetEntry> {
    sockets()?
        .into_iter()
        .find(|s| s.local_address == remote && s.remote_address == local)
}

pub fn own_uid() -> Option<u32> {
    // A process's user does not change under it; ask once.
    static UID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UID.get_or_init(|| Process::myself().ok()?.uid().ok())
}

pub fn connection_owner(local: SocketAddr, remote: SocketAddr) -> Owner {
    // The peer's socket sits at `remote`, facing us. The exact netlink
    // lookup first; the table scan where netlink is unavailable.
    let uid = super::diag::socket_uid(remote, local)
        .or_else(|| peer_socket(local, remote).map(|s| s.uid));
    match (own_uid(), uid) {
        (Some(me), Some(uid)) if uid == me => Owner::Same,
        (Some(_), Some(uid)) => Owner::Other(uid),
        _ => Owner::Unknown,
    }
}

pub fn connection_program(local: SocketAddr, remote: SocketAddr) -> Option<Program> {
    let peer = peer_socket(local, remote)?;
    if Some(peer.uid) != own_uid() {
        return None;
    }
    holders(peer.inode).into_iter().next()
}

/// Our user's processes holding the socket `inode`, lowest pid first.
fn holders(inode: u64) -> Vec<Program> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut found: Vec<Program> = all
        .flatten()
        .filter(|p| {
            p.fd().is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| matches!(fd.target, FDTarget::Socket(i) if i == inode))
            })
        })
        .map(|p| describe(&p))
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

fn describe(p: &Process) -> Program {
    let exe = p.exe().ok();
    let args = p.cmdline().unwrap_or_default();
    Program {
        pid: p.pid().unsigned_abs(),
        app: exe
            .as_deref()
            .and_then(|e| known_app(e, &args))
            .map(str::to_string),
        exe: exe.map(|e| e.to_string_lossy().into_owned()),
    }
}

fn listening(s: &TcpNetEntry) -> bool {
    s.state == TcpState::Listen
}

pub fn listener(port: u16) -> Listener {
    let Some(all) = sockets() else {
        return Listener::Unknown;
    };
    let Some(me) = own_uid() else {
        return Listener::Unknown;
    };
    // A wildcard listener also receives loopback connections.
    let mut on_port: Vec<TcpNetEntry> = all
        .into_iter()
        .filter(|s| {
            listening(s)
                && s.local_address.port() == port
                && (s.local_address.ip().is_loopback() || s.local_address.ip().is_unspecified())
        })
        .collect();
    if on_port.is_empty() {
        return Listener::Nobody;
    }
    // Anyone else on the port matters more than our own socket beside it.
    on_port.sort_by_key(|s| s.uid == me);
    let first = &on_port[0];
    if first.uid != me {
        return Listener::OtherUser { uid: first.uid };
    }
    match holders(first.inode).into_iter().next() {
        Some(program) => Listener::Program(program),
        None => Listener::Unknown,
    }
}

pub fn listener_uid(addr: SocketAddr) -> Option<u32> {
    sockets()?
        .into_iter()
        .find(|s| listening(s) && s.local_address == addr)
        .map(|s| s.uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn our_own_connection_is_ours_and_names_this_test() {
        let server = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = server.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (_accepted, remote) = server.accept().expect("accept");
        assert_eq!(client.local_addr().expect("local"), remote);
        assert_eq!(connection_owner(addr, remote), Owner::Same);
        // Both ways of asking agree.
        assert_eq!(super::super::diag::socket_uid(remote, addr), own_uid());
        assert_eq!(peer_socket(addr, remote).map(|s| s.uid), own_uid());
        let program = connection_program(addr, remote).expect("program");
        assert_eq!(program.pid, std::process::id());
        assert_eq!(
            program.exe.as_deref(),
            std::env::current_exe()
                .ok()
                .as_deref()
                .and_then(|p| p.to_str())
        );
        assert_eq!(listener_uid(addr), own_uid());
        match listener(addr.port()) {
            Listener::Program(p) => assert_eq!(p.pid, std::process::id()),
            other => panic!("expected this process, got {other:?}"),
        }
    }

    #[test]
    fn a_connection_nobody_holds_is_unknown_and_a_free_port_has_nobody() {
        let free = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let remote: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(connection_owner(free, remote), Owner::Unknown);
        assert_eq!(super::super::diag::socket_uid(remote, free), None);
        assert_eq!(connection_program(free, remote), None);
        assert_eq!(listener(free.port()), Listener::Nobody);
    }
}
