//! The live view's routes on the admin listener: `GET /live` (the page), `/live/live.js`,
//! `/live/live.css` (its assets, embedded in the binary: no CDN, works offline) and
//! `/live/events` (the stream, `text/event-stream`). All read-only: the page flips the mode
//! through `PUT /admin/mode` with a token the user types, as any client would.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use tokio::sync::mpsc;

use crate::live::{Hub, ViewerGuard};
use crate::serve::error::AppError;

/// The admin listener's response body: a whole one, or a live stream.
pub(crate) type Body = Either<Full<Bytes>, Stream>;

const PAGE: &str = include_str!("../../assets/live/index.html");
const SCRIPT: &str = include_str!("../../assets/live/live.js");
const STYLE: &str = include_str!("../../assets/live/live.css");

/// Everything the page loads comes from here; it talks to nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Answers a request under `/live`.
pub(crate) fn serve<B>(hub: &Arc<Hub>, req: &Request<B>) -> Result<Response<Body>, AppError> {
    if !hub.enabled {
        return Err(AppError::NotFound(
            "the live view is disabled (live.enabled = false)".into(),
        ));
    }
    let asset = match req.uri().path() {
        "/live" | "/live/" => Some((PAGE, "text/html; charset=utf-8")),
        "/live/live.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        "/live/live.css" => Some((STYLE, "text/css; charset=utf-8")),
        "/live/events" => None,
        _ => return Err(AppError::NotFound("no such live view route".into())),
    };
    if req.method() != Method::GET {
        return Err(AppError::MethodNotAllowed("GET"));
    }
    let mut response = match asset {
        Some((text, content_type)) => {
            let mut r = Response::new(Either::Left(Full::new(Bytes::from_static(text.as_bytes()))));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        None => {
            let Some(stream) = hub.open_stream() else {
                return Err(AppError::Overloaded(
                    "too many live viewers (live.max_viewers)",
                ));
            };
            let mut r = Response::new(Either::Right(stream));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            // Proxies must pass each event on as it comes.
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
            r
        }
    };
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// A stream's body: the frames offered to it, and a note when it lost some.
pub(crate) struct Stream {
    rx: mpsc::Receiver<Bytes>,
    lost: Arc<AtomicU64>,
    reported: u64,
    _viewer: ViewerGuard,
    /// Called once when the stream ends (the hub dropped it, or shut down).
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl Stream {
    pub(crate) fn new(
        rx: mpsc::Receiver<Bytes>,
        lost: Arc<AtomicU64>,
        viewer: ViewerGuard,
    ) -> Self {
        Stream {
            rx,
            lost,
            reported: 0,
            _viewer: viewer,
            on_end: None,
        }
    }

    /// Runs `f` once when the stream ends; the connection then only waits for its client to
    /// take the rest (or a stalled viewer never does).
    pub(crate) fn on_end(&mut self, f: impl FnOnce() + Send + 'static) {
        self.on_end = Some(Box::new(f));
    }
}

impl hyper::body::Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let lost = self.lost.load(Ordering::Relaxed);
        if lost != self.reported {
            self.reported = lost;
            let note = format!("data: {{\"type\":\"lost\",\"frames\":{lost}}}\n\n");
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(note)))));
        }
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(None) = polled {
            if let Some(f) = self.on_end.take() {
                f();
            }
        }
        polled.map(|frame| frame.map(|b| Ok(Frame::data(b))))
    }
}
