//! A stand-in on the network path between a client and its server: a TCP
//! proxy that counts the connections it accepts and can cut the path (its
//! connections closed, new ones closed at once) while the server itself
//! stays up. Plain threads, no runtime, so a test that blocks its runtime
//! (a `run_blocking` inside an async task) cannot stall it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A counting TCP proxy to one server; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: String,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicUsize,
    cut: AtomicBool,
    stopped: AtomicBool,
    /// The open connections (both sides), so cutting the path closes them.
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// A proxy on a free loopback port to `upstream` (`http://host:port`).
    pub(crate) fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("a plain http address, not {upstream}"))
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = format!("http://{}", listener.local_addr().expect("its address"));
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if accepting.stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    accepting.accepted.fetch_add(1, Ordering::SeqCst);
                    if accepting.cut.load(Ordering::SeqCst) {
                        continue; // dropped: closed at once
                    }
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue; // the server is down: so is the path
                    };
                    accepting.forward(client, server);
                }
            })
            .expect("the proxy's thread");
        Proxy { addr, shared }
    }

    /// Its address, `http://127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Cuts the path: open connections are closed, new ones closed at once.
    pub(crate) fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        let open = std::mem::take(&mut *self.shared.lock_open());
        for stream in open {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Restores the path.
    pub(crate) fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Shared {
    fn lock_open(&self) -> std::sync::MutexGuard<'_, Vec<TcpStream>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies both ways between `client` and `server` until either closes.
    fn forward(&self, client: TcpStream, server: TcpStream) {
        let streams = [&client, &server].map(|s| s.try_clone());
        let [Ok(client_out), Ok(server_in)] = streams else {
            return;
        };
        {
            let mut open = self.lock_open();
            for s in [&client, &server] {
                if let Ok(s) = s.try_clone() {
                    open.push(s);
                }
            }
        }
        pipe(client, server_in);
        pipe(server, client_out);
    }
}

/// Copies `from` into `to` on a thread of its own; at the end closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::thread::Builder::new()
        .name("proxy-pipe".into())
        .spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stopped`.
        let address = self.addr.trim_start_matches("http://");
        let _ = TcpStream::connect_timeout(
            &address.parse().expect("a socket address"),
            Duration::from_secs(1),
        );
    }
}
