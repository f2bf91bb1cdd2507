//! A TCP relay that notes when each connection's first bytes arrive: the moment a client sent its
//! first request through it. Put in front of the simulator (and of moto), it tells when a freshly
//! spawned collector made its first API (and AWS) request, on the bench's own monotonic clock.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Error;

/// A running relay; stops accepting when dropped.
pub struct TimingProxy {
    pub url: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<()>,
}

impl TimingProxy {
    /// Relays `127.0.0.1:<free port>` to the host and port of `upstream_url` (`http://h:p`).
    pub async fn start(upstream_url: &str) -> Result<TimingProxy, Error> {
        let authority = upstream_url
            .strip_prefix("http://")
            .ok_or_else(|| format!("not an http:// URL: {upstream_url}"))?
            .trim_end_matches('/');
        let upstream: SocketAddr = authority.parse()?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&arrivals);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let _ = relay(client, upstream, &seen).await;
                });
            }
        });
        Ok(TimingProxy { url, arrivals, task })
    }

    /// The first arrival at or after `since`.
    pub fn first_after(&self, since: Instant) -> Option<Instant> {
        let arrivals = self.arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        arrivals.iter().copied().filter(|t| *t >= since).min()
    }
}

impl Drop for TimingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    arrivals: &Mutex<Vec<Instant>>,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut first = vec![0u8; 64 * 1024];
    let n = client.read(&mut first).await?;
    if n == 0 {
        return Ok(());
    }
    arrivals.lock().unwrap_or_else(PoisonError::into_inner).push(Instant::now());
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    server.write_all(&first[..n]).await?;
    drop(first);
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
