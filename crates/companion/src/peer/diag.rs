//! Linux's sock_diag netlink: the owner of one TCP socket, found by its
//! exact four-tuple in the kernel's socket hash. The peer guard asks this
//! once per accepted connection, so its cost must not grow with the number
//! of sockets on the machine, as a scan of `/proc/net/tcp` would.

use std::net::SocketAddr;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

/// The kernel's "no cookie": match by address and ports alone.
const NO_COOKIE: [u8; 8] = [0xff; 8];

/// The uid owning the TCP socket whose own address is `at` and whose peer
/// is `facing`; `None` when there is no such socket or netlink failed.
pub fn socket_uid(at: SocketAddr, facing: SocketAddr) -> Option<u32> {
    if at.is_ipv4() != facing.is_ipv4() {
        return None;
    }
    let family = if at.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut header = NetlinkHeader::default();
    // No NLM_F_DUMP: an exact lookup of one socket.
    header.flags = NLM_F_REQUEST;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: at.port(),
                destination_port: facing.port(),
                source_address: at.ip(),
                destination_address: facing.ip(),
                interface_id: 0,
                cookie: NO_COOKIE,
            },
        })
        .into(),
    );
    request.finalize();
    let mut out = vec![0; request.buffer_len()];
    request.serialize(&mut out);

    let mut socket = Socket::new(NETLINK_SOCK_DIAG).ok()?;
    socket.bind_auto().ok()?;
    socket.connect(&NetlinkAddr::new(0, 0)).ok()?;
    socket.send(&out, 0).ok()?;
    let mut answer = Vec::with_capacity(8192);
    let len = socket.recv(&mut answer, 0).ok()?;
    let reply = NetlinkMessage::<SockDiagMessage>::deserialize(answer.get(..len)?).ok()?;
    match reply.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
            // The kernel answers the closest match it has; insist on ours.
            let id = &r.header.socket_id;
            (id.source_port == at.port()
                && id.destination_port == facing.port()
                && id.source_address == at.ip()
                && id.destination_address == facing.ip())
            .then_some(r.header.uid)
        }
        _ => None,
    }
}
