//! A TCP forwarder a test puts in front of a database and cuts to simulate
//! an outage, without touching the database server other tests share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections on `127.0.0.1:<ephemeral>` to an upstream address.
/// [`TcpProxy::cut`] closes every forwarded connection and closes new ones
/// as soon as they are accepted, as a database that went away would;
/// [`TcpProxy::stall`] keeps them open but forwards nothing, as a network
/// that silently drops packets would; [`TcpProxy::restore`] forwards again.
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    cut: AtomicBool,
    stalled: AtomicBool,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let state = Arc::new(State::default());
        let accept = tokio::spawn(accept_loop(listener, upstream, state.clone()));
        Self { addr, state, accept }
    }

    /// A proxy in front of the server of a `postgres://` URL, and the same
    /// URL pointing at the proxy.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        let (prefix, host_port, suffix) = split_authority(url);
        let upstream = tokio::net::lookup_host(host_port)
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .unwrap_or_else(|| panic!("resolve {host_port}"));
        let proxy = Self::start(upstream).await;
        let proxied = format!("{prefix}{}{suffix}", proxy.addr);
        (proxy, proxied)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The outage: every open connection is closed, new ones are closed on
    /// accept.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        let connections = std::mem::take(&mut *self.state.connections.lock().expect("proxy state"));
        for connection in connections {
            connection.abort();
        }
    }

    /// The hang: connections stay open, and bytes already sent wait in the
    /// proxy until [`TcpProxy::restore`].
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
    }

    /// The database is back.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
        self.state.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        if state.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let forward_state = state.clone();
        let forward = tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                () = pump(client_read, server_write, &forward_state) => {}
                () = pump(server_read, client_write, &forward_state) => {}
            }
        });
        let mut connections = state.connections.lock().expect("proxy state");
        connections.retain(|connection| !connection.is_finished());
        connections.push(forward);
    }
}

/// Copies one direction until either side closes, holding each chunk while
/// the proxy is stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, state: &State) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        while state.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// `postgres://user@host:5432/db?x` as (`postgres://user@`, `host:5432`,
/// `/db?x`).
fn split_authority(url: &str) -> (&str, &str, &str) {
    let authority_start = url.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let authority_end = url[authority_start..].find(['/', '?']).map_or(url.len(), |end| authority_start + end);
    let host_start =
        url[authority_start..authority_end].rfind('@').map_or(authority_start, |at| authority_start + at + 1);
    (&url[..host_start], &url[host_start..authority_end], &url[authority_end..])
}

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn the_host_and_port_of_a_url_are_found() {
        assert_eq!(split_authority("postgres://u:p@h:5432/db?x=1"), ("postgres://u:p@", "h:5432", "/db?x=1"));
        assert_eq!(split_authority("postgres://h:5432/db"), ("postgres://", "h:5432", "/db"));
    }
}
