//! The admin HTTP server: an HTTP/1.1 accept loop (hyper) on the control plane's runtime,
//! the access check, and the routing table:
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/` | the live status page |
//! | GET | `/metrics` | Prometheus text |
//! | GET | `/status` | JSON |
//! | POST | `/pools/{pool}/backends/{addr}/drain`, `/enable`, `/weight` | JSON |
//!
//! A slow or hostile client costs the control thread a task, never a worker: headers must
//! arrive within [`HEADER_TIMEOUT`], bodies are capped, connections are capped at
//! [`MAX_CONNECTIONS`] (past it new ones are closed at once). Nothing here may panic on input.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::auth::Access;
use super::routes::{self, Action, MAX_BODY};
use super::sample::Sample;
use super::state::AdminState;
use super::{metrics, page, status};

/// Ten seconds for a request's headers: plenty for any client on a working network, and a
/// connection that trickles them is dropped instead of held.
pub(super) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Sixty-four connections at once: a few scrapers, browsers and scripts; more would be abuse.
pub(super) const MAX_CONNECTIONS: usize = 64;

/// Everything a request handler needs.
pub(super) struct Ctx {
    pub state: Arc<AdminState>,
    pub access: Access,
}

/// Accepts until the task is dropped (the control runtime stops, or the admin handle goes).
pub(super) async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and the like: pause instead of spinning on the error.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "admin connection refused: {MAX_CONNECTIONS} already open");
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
            });
            let result = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
            }
            drop(slot);
        });
    }
}

type Body = Full<Bytes>;

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    respond(status, "application/json", body)
}

async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if !ctx.access.allows(&path, req.headers()) {
        let (status, body) = routes::error(StatusCode::UNAUTHORIZED, "missing or wrong token");
        let mut r = json(status, body);
        // Bearer for scripts; Basic so that a browser asks for the token (as the password).
        let headers = r.headers_mut();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ringlb\""),
        );
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ringlb admin\", charset=\"UTF-8\""),
        );
        return r;
    }
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/") => respond(StatusCode::OK, page::CONTENT_TYPE, page::HTML.into()),
        (Method::GET, "/metrics") => {
            let (content_type, body) = metrics::render(&Sample::take(&ctx.state));
            respond(StatusCode::OK, content_type, body)
        }
        (Method::GET, "/status") => json(StatusCode::OK, status::render(&Sample::take(&ctx.state))),
        (Method::POST, "/reload") => {
            let state = ctx.state.clone();
            // File I/O and a table rebuild: off the runtime's thread.
            let done = tokio::task::spawn_blocking(move || state.reload()).await;
            let (status, body) = match done {
                Ok(Ok(summary)) => (
                    StatusCode::OK,
                    serde_json::json!({ "reloaded": summary }).to_string(),
                ),
                Ok(Err(why)) => routes::error(StatusCode::BAD_REQUEST, &why),
                Err(_) => routes::error(StatusCode::INTERNAL_SERVER_ERROR, "reload task failed"),
            };
            json(status, body)
        }
        (_, "/reload") => {
            let (s, b) = routes::error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            json(s, b)
        }
        (method, _) => match routes::parse_path(&path) {
            None if matches!(path.as_str(), "/" | "/metrics" | "/status") => {
                let (s, b) = routes::error(StatusCode::METHOD_NOT_ALLOWED, "use GET");
                json(s, b)
            }
            None => {
                let (s, b) = routes::error(StatusCode::NOT_FOUND, "no such endpoint");
                json(s, b)
            }
            Some(_) if method != Method::POST => {
                let (s, b) = routes::error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
                json(s, b)
            }
            Some(Err(message)) => {
                let (s, b) = routes::error(StatusCode::BAD_REQUEST, &message);
                json(s, b)
            }
            Some(Ok(target)) => {
                let query = req.uri().query().map(str::to_owned);
                let weight = if target.action == Action::Weight {
                    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(_) => {
                            let (s, b) = routes::error(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "body too large or cut short",
                            );
                            return json(s, b);
                        }
                    };
                    match routes::parse_weight(query.as_deref(), &body) {
                        Ok(w) => Some(w),
                        Err(message) => {
                            let (s, b) = routes::error(StatusCode::BAD_REQUEST, &message);
                            return json(s, b);
                        }
                    }
                } else {
                    None
                };
                let (s, b) = routes::apply(&ctx.state, &target, weight);
                json(s, b)
            }
        },
    }
}
