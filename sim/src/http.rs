//! The HTTP edge: the axum router, serving on a listener, and [`SimServer`] for tests.
//!
//! Everything under `/_sim/` is a control endpoint (see `control.rs`); every other request
//! goes to the feed logic through a transport-neutral [`ApiRequest`]. The raw query string is
//! passed on exactly as received. Only this module knows about axum's types.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::control;
use crate::feed::ApiRequest;
use crate::reply::{Reply, Wire};
use crate::simulator::Simulator;

impl Simulator {
    /// The full router: control endpoints and the API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/_sim/generate", post(control::generate))
            .route("/_sim/reveal", post(control::reveal))
            .route("/_sim/activities", get(control::activities))
            .route("/_sim/insert", post(control::insert))
            .route("/_sim/requests", get(control::requests))
            .route("/_sim/faults", post(control::faults))
            .route("/_sim/faults/random", post(control::random_faults))
            .route("/_sim/faults/clear", post(control::clear_faults))
            .route("/_sim/revoke", post(control::revoke))
            .fallback(api)
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped or the listener fails.
    pub async fn serve(&self, listener: TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Serves on `listener` until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve_until(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await
    }

    /// Binds 127.0.0.1 on a free port and serves in a background task until the returned
    /// [`SimServer`] is dropped.
    pub async fn spawn(&self) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let sim = self.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                // Either a send or the sender being dropped means stop.
                let _ = stopped.await;
            };
            if let Err(error) = sim.serve_until(listener, shutdown).await {
                tracing::error!(%error, "simulator server failed");
            }
        });
        Ok(SimServer { base_url, stop: Some(stop), task: Some(task) })
    }
}

/// A simulator served in the background; stops accepting connections when dropped.
#[derive(Debug)]
pub struct SimServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// `base_url` + `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// The feed endpoint's URL.
    pub fn feed_url(&self) -> String {
        self.url(crate::feed::FEED_PATH)
    }

    /// Stops and waits until in-flight requests are answered.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn api(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let text = |name: HeaderName| {
        headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let request = ApiRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        host: text(header::HOST),
        api_key: text(HeaderName::from_static("x-api-key")),
        anthropic_version: text(HeaderName::from_static("anthropic-version")),
        user_agent: text(header::USER_AGENT),
    };
    into_response(sim.answer(&request).await)
}

/// A [`Reply`] as an HTTP response with `content-type: application/json`.
pub(crate) fn into_response(reply: Reply) -> Response {
    // A status outside 100..=999 can only come from a hand-made Fault; answer 500 instead.
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in reply.headers {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(HeaderName::from_static(name), value);
            }
            Err(error) => tracing::error!(%error, name, "header value dropped"),
        }
    }
    let body = match reply.wire {
        Wire::Whole => Body::from(reply.body),
        Wire::NonUtf8At(at) => {
            let mut bytes = reply.body.into_bytes();
            if let Some(byte) = bytes.get_mut(at) {
                *byte = 0xFF;
            }
            Body::from(bytes)
        }
        Wire::Chunked => Body::from_stream(Chunks { body: Bytes::from(reply.body), at: 0 }),
        Wire::ResetAfter(cut) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(reply.body.len()));
            let mut bytes = reply.body.into_bytes();
            bytes.truncate(cut);
            Body::from_stream(CutBody {
                head: Some(Bytes::from(bytes)),
                pause: Some(Box::pin(tokio::time::sleep(CUT_PAUSE))),
            })
        }
    };
    (status, headers, body).into_response()
}

/// The size of each chunk of a chunked body.
const CHUNK_BYTES: usize = 16 * 1024;

/// A whole body sent as a stream of chunks: with no length known up front, hyper sends it with
/// `transfer-encoding: chunked`.
struct Chunks {
    body: Bytes,
    at: usize,
}

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let at = self.at;
        if at >= self.body.len() {
            return Poll::Ready(None);
        }
        let end = (at + CHUNK_BYTES).min(self.body.len());
        self.at = end;
        Poll::Ready(Some(Ok(self.body.slice(at..end))))
    }
}

/// How long a cut body waits after its head, so the head reaches the client before the reset.
const CUT_PAUSE: Duration = Duration::from_millis(50);

/// A body that yields its head, pauses, then fails: hyper then drops the connection with the
/// announced length unmet, which the client sees as a reset in the middle of the body.
struct CutBody {
    head: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl futures_core::Stream for CutBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(head)));
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset (compliance-sim)",
        ))))
    }
}
