//! Who is on the other end of a loopback TCP connection: the owner uid the kernel keeps
//! for the caller's socket, from the kernel's socket diagnostics (`NETLINK_SOCK_DIAG`, the
//! interface `ss -e` uses), looked up by the connection's exact four-tuple.
//!
//! Why it is sound: the uid is the socket's `sk_uid`, set by the kernel when the caller
//! created it (the creator's fsuid, mapped into our user namespace: a rootless container's
//! user shows as its host uid), and no process can change it afterwards. While we hold our
//! end open, the caller's end is in the table under that four-tuple; only an
//! `ESTABLISHED` socket is accepted, so a caller that already closed (a `TIME_WAIT`
//! entry, which has no owner) is refused rather than read as root. A socket handed to
//! another process keeps its creator's uid, which is the creator's own choice to share.

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

/// Why the caller's uid is unknown.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("the socket diagnostics of the kernel cannot be asked: {0}")]
    Netlink(std::io::Error),
    #[error("the kernel has no established connection from {0}")]
    NotFound(SocketAddr),
    #[error("the kernel's answer about {0} cannot be read: {1}")]
    Garbled(SocketAddr, String),
}

/// The uid owning the client socket `remote` that is connected to our `local`.
pub fn uid_of(local: SocketAddr, remote: SocketAddr) -> Result<u32, PeerError> {
    let family = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => AF_INET6,
        _ => return Err(PeerError::NotFound(remote)),
    };
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(PeerError::Netlink)?;
    socket.bind_auto().map_err(PeerError::Netlink)?;
    socket
        .connect(&NlAddr::new(0, 0))
        .map_err(PeerError::Netlink)?;
    let mut header = NetlinkHeader::default();
    // One socket, not a dump: the kernel looks up the exact four-tuple.
    header.flags = NLM_F_REQUEST;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::ESTABLISHED,
            socket_id: SocketId {
                // The caller's socket: its source is the caller, its destination us.
                source_port: remote.port(),
                destination_port: local.port(),
                source_address: remote.ip(),
                destination_address: local.ip(),
                interface_id: 0,
                // INET_DIAG_NOCOOKIE: match by address and port only.
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf[..]);
    socket.send(&buf, 0).map_err(PeerError::Netlink)?;
    let mut reply = Vec::with_capacity(8192);
    let n = socket.recv(&mut reply, 0).map_err(PeerError::Netlink)?;
    let garbled = |why: String| PeerError::Garbled(remote, why);
    let msg = <NetlinkMessage<SockDiagMessage>>::deserialize(&reply[..n])
        .map_err(|e| garbled(e.to_string()))?;
    match msg.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
            let id = &r.header.socket_id;
            // The kernel matched what we asked; check it anyway before trusting the uid.
            let same = id.source_port == remote.port()
                && id.destination_port == local.port()
                && id.source_address == remote.ip()
                && id.destination_address == local.ip();
            // TCP_ESTABLISHED is 1 in the kernel's state numbering.
            if !same || r.header.state != 1 {
                return Err(PeerError::NotFound(remote));
            }
            Ok(r.header.uid)
        }
        NetlinkPayload::Error(e) if e.code.is_some() => Err(PeerError::NotFound(remote)),
        other => Err(garbled(format!(
            "unexpected message type {}",
            other.message_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// A connection of ours is ours: the kernel reports this process's uid, by the exact
    /// four-tuple; a four-tuple nobody holds is not found (never a default uid).
    #[test]
    fn finds_our_own_connection_and_nothing_else() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let client = TcpStream::connect(local).unwrap();
        let (_server, remote) = listener.accept().unwrap();
        assert_eq!(remote, client.local_addr().unwrap());
        assert_eq!(
            uid_of(local, remote).unwrap(),
            nix::unistd::geteuid().as_raw()
        );
        let nobody = SocketAddr::from(([127, 0, 0, 1], 1));
        assert!(matches!(uid_of(local, nobody), Err(PeerError::NotFound(_))));
        // A closed caller is gone too (its TIME_WAIT entry has no owner).
        drop(client);
        drop(_server);
        assert!(matches!(uid_of(local, remote), Err(PeerError::NotFound(_))));
    }
}
