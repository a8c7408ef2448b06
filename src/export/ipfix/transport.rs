//! The sockets that carry messages to a collector.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// Where messages go: a connected UDP socket, or a TCP stream reconnected on failure.
pub enum Transport {
    Udp(UdpSocket),
    Tcp {
        addr: SocketAddr,
        stream: Option<TcpStream>,
    },
}

/// How long a TCP connect or a blocked write may take before the collector counts as gone.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(5);

impl Transport {
    pub fn udp(target: &str) -> io::Result<Transport> {
        let addr = resolve(target)?;
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(addr)?;
        Ok(Transport::Udp(socket))
    }

    /// Resolves the address only; the connection is made by [`Transport::connect`] or the first
    /// send.
    pub fn tcp(target: &str) -> io::Result<Transport> {
        Ok(Transport::Tcp {
            addr: resolve(target)?,
            stream: None,
        })
    }

    /// Opens the TCP connection if there is none. True when a new connection was made (a new
    /// transport session: templates and sequence numbers start again).
    pub fn connect(&mut self) -> io::Result<bool> {
        match self {
            Transport::Udp(_) => Ok(false),
            Transport::Tcp {
                stream: Some(_), ..
            } => Ok(false),
            Transport::Tcp { addr, stream } => {
                let s = TcpStream::connect_timeout(addr, TCP_TIMEOUT)?;
                s.set_write_timeout(Some(TCP_TIMEOUT))?;
                s.set_nodelay(true)?;
                *stream = Some(s);
                Ok(true)
            }
        }
    }

    /// Sends one message. A TCP error closes the connection; the next send reconnects.
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            Transport::Udp(s) => s.send(msg).map(|_| ()),
            Transport::Tcp { stream, .. } => {
                let Some(s) = stream else {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "not connected to the collector",
                    ));
                };
                let r = s.write_all(msg);
                if r.is_err() {
                    *stream = None;
                }
                r
            }
        }
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self, Transport::Tcp { .. })
    }
}

fn resolve(target: &str) -> io::Result<SocketAddr> {
    target.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{target}: no address found"),
        )
    })
}
