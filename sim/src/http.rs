//! The HTTP edge: the axum router, serving on a listener, and [`SimServer`] for tests.
//!
//! Everything under `/_sim/` is a control endpoint (see `control.rs`); every other request
//! goes to the feed logic through a transport-neutral [`ApiRequest`]. The raw query string is
//! passed on exactly as received. Only this module knows about axum's types.

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::control;
use crate::feed::ApiRequest;
use crate::reply::Reply;
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
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
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
        Ok(SimServer {
            base_url,
            stop: Some(stop),
            task: Some(task),
        })
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
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
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
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in reply.headers {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(HeaderName::from_static(name), value);
            }
            Err(error) => tracing::error!(%error, name, "header value dropped"),
        }
    }
    (status, headers, Body::from(reply.body)).into_response()
}
