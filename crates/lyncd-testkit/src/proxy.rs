//! A loopback TCP forwarder that can be taken down and brought back up, to simulate a server
//! (typically PostgreSQL) that goes away mid-run without touching the real, shared server.
//!
//! [`TcpProxy`] runs on its own thread with its own tokio runtime, so it works the same from
//! synchronous and asynchronous tests, and its switches return only once they took effect.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

enum Command {
    SetDown(bool, std_mpsc::Sender<()>),
    Shutdown,
}

/// Forwards every connection to `127.0.0.1:<port>` to a target address.
///
/// While [`down`](Self::set_down), the port is closed: connecting is refused and every
/// connection that was being forwarded has been closed (both towards the client and towards
/// the target). Back up, the same port accepts and forwards again.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    target: SocketAddr,
    down: AtomicBool,
    accepted: Arc<AtomicU64>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::SetDown(d, _) => write!(f, "SetDown({d})"),
            Command::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl TcpProxy {
    /// Starts forwarding from a new port on 127.0.0.1 to `target`. Panics if it cannot.
    pub fn start(target: SocketAddr) -> TcpProxy {
        let (commands, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&accepted);
        let thread = std::thread::Builder::new()
            .name(format!("tcp-proxy-{target}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match bind(SocketAddr::from(([127, 0, 0, 1], 0))) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let addr = match listener.local_addr() {
                        Ok(a) => a,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(addr));
                    run(listener, addr, target, rx, counter).await;
                });
            })
            .unwrap_or_else(|e| panic!("cannot start the proxy thread: {e}"));
        let addr = match ready_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("cannot start a TCP proxy to {target}: {e}"),
            Err(_) => panic!("the TCP proxy to {target} died while starting"),
        };
        TcpProxy {
            addr,
            target,
            down: AtomicBool::new(false),
            accepted,
            commands,
            thread: Some(thread),
        }
    }

    /// Where clients connect: `127.0.0.1:<port>`, the same port for the proxy's whole life.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// `true`: close every forwarded connection and the port (new connections are refused);
    /// `false`: listen on the same port again and forward. Returns once done; a no-op when
    /// already in that state. Panics if the port cannot be taken back (another process bound
    /// it in the meantime).
    pub fn set_down(&self, down: bool) {
        let (done_tx, done_rx) = std_mpsc::channel();
        if self.commands.send(Command::SetDown(down, done_tx)).is_err() {
            panic!("the TCP proxy on {} has stopped", self.addr);
        }
        if done_rx.recv().is_err() {
            panic!(
                "the TCP proxy on {} stopped while switching {}",
                self.addr,
                if down { "down" } else { "up" }
            );
        }
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether the proxy is down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// How many connections have been accepted (and forwarded) so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Taking the port back after `set_down(true)` must not fail on the TIME_WAIT
    // connections the closed forwards left behind.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Rebinds the proxy's own port; retries for a while in case the kernel still holds it.
async fn rebind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match bind(addr) {
            Ok(l) => return l,
            Err(e) if Instant::now() > deadline => {
                panic!("TCP proxy: cannot listen on {addr} again: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn run(
    listener: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    mut commands: mpsc::UnboundedReceiver<Command>,
    accepted: Arc<AtomicU64>,
) {
    let mut listener = Some(listener);
    let mut forwards: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(Command::Shutdown) => break,
                Some(Command::SetDown(true, done)) => {
                    // Closing the listener refuses new connections (and resets the ones
                    // still waiting in its backlog); aborting a forward drops, and so closes,
                    // both of its sockets.
                    listener = None;
                    forwards.abort_all();
                    while forwards.join_next().await.is_some() {}
                    let _ = done.send(());
                }
                Some(Command::SetDown(false, done)) => {
                    if listener.is_none() {
                        listener = Some(rebind(addr).await);
                    }
                    let _ = done.send(());
                }
            },
            conn = accept(listener.as_ref()) => {
                if let Ok((client, _)) = conn {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    forwards.spawn(forward(client, target));
                }
            },
            // Reap finished forwards so the set does not grow without bound.
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
    forwards.abort_all();
    while forwards.join_next().await.is_some() {}
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return; // dropping the client closes it: to it, the server is not there
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A line echo server on a plain std thread: answers each read with the same bytes.
    fn echo_server() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn roundtrip(conn: &mut std::net::TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        conn.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        conn.read_exact(&mut got)?;
        Ok(got)
    }

    fn connect(addr: SocketAddr) -> io::Result<std::net::TcpStream> {
        let c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(c)
    }

    /// The connection is dead: reads see EOF or an error (never a timeout, never data).
    fn assert_closed(conn: &mut std::net::TcpStream) {
        let _ = conn.write_all(b"anyone?");
        let mut buf = [0u8; 16];
        match conn.read(&mut buf) {
            Ok(0) => {}
            Err(e)
                if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut => {
            }
            other => panic!("the connection is still open: {other:?}"),
        }
    }

    #[test]
    fn forwards_and_goes_down_and_up_on_the_same_port() {
        let proxy = TcpProxy::start(echo_server());
        let addr = proxy.addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        assert!(!proxy.is_down());

        let mut a = connect(addr).unwrap();
        let mut b = connect(addr).unwrap();
        assert_eq!(roundtrip(&mut a, b"hello").unwrap(), b"hello");
        assert_eq!(roundtrip(&mut b, b"world").unwrap(), b"world");
        assert_eq!(proxy.accepted(), 2);

        proxy.set_down(true);
        assert!(proxy.is_down());
        proxy.set_down(true); // idempotent
        assert_closed(&mut a);
        assert_closed(&mut b);
        let refused = connect(addr).map(|mut c| roundtrip(&mut c, b"x"));
        assert!(
            matches!(&refused, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
            "{refused:?}"
        );

        proxy.set_down(false);
        assert!(!proxy.is_down());
        proxy.set_down(false); // idempotent
        assert_eq!(proxy.addr(), addr);
        let mut c = connect(addr).unwrap();
        assert_eq!(roundtrip(&mut c, b"again").unwrap(), b"again");

        // And once more, with a forward alive across the switch.
        proxy.set_down(true);
        assert_closed(&mut c);
        proxy.set_down(false);
        let mut d = connect(addr).unwrap();
        assert_eq!(
            roundtrip(&mut d, &[7u8; 100_000]).unwrap(),
            vec![7u8; 100_000]
        );
    }

    #[tokio::test]
    async fn works_from_async_tests_and_closes_async_clients() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let proxy = TcpProxy::start(echo_server());
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        conn.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set_down(true);
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
            .await
            .expect("the forwarded connection was not closed");
        assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
        assert!(TcpStream::connect(proxy.addr()).await.is_err());

        proxy.set_down(false);
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        conn.write_all(b"pong").await.unwrap();
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }

    #[test]
    fn an_unreachable_target_closes_the_client() {
        // A port nothing listens on: bind one, note it, close it.
        let target = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = TcpProxy::start(target);
        let mut c = connect(proxy.addr()).unwrap();
        assert_closed(&mut c);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_through_the_proxy_fails_while_down_and_recovers() {
        use sqlx::{Connection, PgConnection};
        let Some(db) = crate::TestDb::create_or_skip().await else {
            return;
        };
        let server: SocketAddr = {
            let u = url::Url::parse(&db.url()).unwrap();
            let host = u.host_str().unwrap().trim_matches(['[', ']']).to_string();
            let port = u.port().unwrap_or(5432);
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .unwrap()
                .next()
                .unwrap()
        };
        let proxy = TcpProxy::start(server);
        let url = crate::url_via(&db.url(), proxy.addr());
        let mut conn = PgConnection::connect(&url).await.unwrap();
        conn.ping().await.unwrap();

        proxy.set_down(true);
        assert!(conn.ping().await.is_err());
        assert!(PgConnection::connect(&url).await.is_err());

        proxy.set_down(false);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
}
