//! A minimal HTTP/1.1 server bound to `127.0.0.1`, for the emulator and tests.
//!
//! One request per connection (`Connection: close`), one thread per
//! connection. Requests need a `Content-Length` body (at most
//! [`MAX_BODY_BYTES`]); anything malformed gets a `400`-class answer and never
//! takes the server down. Stopping the server closes open connections, wakes
//! delayed answers and joins every thread it started.

use cardbridge::error::{Error, ErrorKind, Result};
use cardbridge::http::{HttpRequest, HttpResponse, find_header};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request body accepted; larger ones are answered `413`.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Largest request head (request line + headers); larger ones are answered `431`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Socket read/write timeout, so a silent client cannot pin a thread forever.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long, and how much, we read and discard after an early error answer,
/// so the client gets our answer instead of a connection reset.
const DRAIN_TIME: Duration = Duration::from_millis(500);
const DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;

/// What the handler wants done with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer now.
    Respond(HttpResponse),
    /// Answer after the delay (the connection is closed unanswered if the
    /// server stops first).
    RespondAfter(Duration, HttpResponse),
    /// Close the connection without answering.
    Drop,
}

/// The request handler: called once per well-formed request, on the
/// connection's thread.
type Handler = dyn Fn(&HttpRequest) -> Action + Send + Sync;

/// Open connections and connection threads, guarded by one lock so that
/// stopping and accepting cannot race.
#[derive(Default)]
struct Connections {
    stopping: bool,
    next_id: u64,
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    handler: Box<Handler>,
    connections: Mutex<Connections>,
    /// Notified (with `connections`) when the server stops.
    stopped: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connections> {
        // A panicking connection thread cannot leave the registry inconsistent.
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `delay` unless the server stops first; true if it did not stop.
    fn wait_unless_stopped(&self, delay: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .stopped
            .wait_timeout_while(guard, delay, |c| !c.stopping)
            .unwrap_or_else(PoisonError::into_inner);
        !guard.stopping
    }
}

/// A running loopback HTTP server. Stops on [`HttpServer::stop`] or drop.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpServer {
    /// Listens on `127.0.0.1` on a free port and serves every request with
    /// `handler`.
    pub fn start<H>(handler: H) -> Result<HttpServer>
    where
        H: Fn(&HttpRequest) -> Action + Send + Sync + 'static,
    {
        HttpServer::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), handler)
    }

    /// Listens on `addr` (port 0: a free one) and serves every request with
    /// `handler`. For the `cardbridge emulator` binary; tests use [`Self::start`].
    pub fn bind<H>(addr: SocketAddr, handler: H) -> Result<HttpServer>
    where
        H: Fn(&HttpRequest) -> Action + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr)
            .map_err(|e| Error::new(ErrorKind::Transport, format!("emulator: cannot listen on {addr} ({e})")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Transport, format!("emulator: no local address ({e})")))?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            connections: Mutex::new(Connections::default()),
            stopped: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("cardbridge-emulator-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("emulator: cannot start the accept thread: {e}"),
                )
            })?;
        Ok(HttpServer {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// The bound address (`127.0.0.1:<port>` unless bound with [`Self::bind`]).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes open connections, and joins all threads.
    pub fn stop(self) {
        // Drop does the work.
    }

    fn shutdown(&mut self) {
        let threads = {
            let mut c = self.shared.lock();
            c.stopping = true;
            for stream in c.open.values() {
                // Unblocks reads in connection threads; errors mean it is already closed.
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut c.threads)
        };
        self.shared.stopped.notify_all();
        // Wake the blocking accept() so the loop sees `stopping`.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            // Bound to every interface: knock on the loopback one.
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok();
        if let Some(accept) = self.accept_thread.take() {
            if woke {
                let _ = accept.join();
            }
            // Otherwise leave it detached rather than hang: it exits on its next connection.
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        let mut c = shared.lock();
        if c.stopping {
            return;
        }
        let Ok(stream) = incoming else {
            // E.g. out of file descriptors: back off instead of spinning.
            drop(c);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        c.threads.retain(|t| !t.is_finished());
        let id = c.next_id;
        c.next_id += 1;
        if let Ok(clone) = stream.try_clone() {
            c.open.insert(id, clone);
        }
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("cardbridge-emulator-conn".into())
            .spawn(move || {
                serve_connection(&conn_shared, stream);
                conn_shared.lock().open.remove(&id);
            });
        match spawned {
            Ok(t) => c.threads.push(t),
            // The closure (and with it the stream) is dropped: the client sees a closed connection.
            Err(_) => {
                c.open.remove(&id);
            }
        }
    }
}

/// Why reading a request stopped short.
enum ReadFailure {
    /// Answer this (the request was malformed or too large).
    Reply(HttpResponse),
    /// Just close: the client went away or timed out.
    Close,
}

fn serve_connection(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    match read_request(&mut stream) {
        Ok(request) => {
            let action = catch_unwind(AssertUnwindSafe(|| (shared.handler)(&request)))
                .unwrap_or_else(|_| Action::Respond(text_response(500, "handler failed")));
            match action {
                Action::Respond(response) => write_response(&mut stream, &response),
                Action::RespondAfter(delay, response) => {
                    if shared.wait_unless_stopped(delay) {
                        write_response(&mut stream, &response);
                    }
                }
                Action::Drop => {}
            }
        }
        Err(ReadFailure::Reply(response)) => {
            write_response(&mut stream, &response);
            drain(&mut stream);
        }
        Err(ReadFailure::Close) => {}
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// A `text/plain` response, used for transport-level answers.
pub fn text_response(status: u16, text: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "text/plain; charset=UTF-8".into())],
        body: text.as_bytes().to_vec(),
    }
}

fn bad_request(why: &str) -> ReadFailure {
    ReadFailure::Reply(text_response(400, why))
}

/// Position of the blank line ending the head, and its length (`\r\n\r\n`,
/// or `\n\n` from lenient clients).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn read_request(stream: &mut TcpStream) -> std::result::Result<HttpRequest, ReadFailure> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (head_len, sep_len) = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadFailure::Reply(text_response(431, "request head too large")));
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(ReadFailure::Close),
            Ok(0) => return Err(bad_request("incomplete request head")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ReadFailure::Close),
        }
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(ReadFailure::Reply(text_response(431, "request head too large")));
    }
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| bad_request("request head is not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let request_line = lines.by_ref().find(|l| !l.is_empty()).unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(bad_request("malformed request line"));
    };
    if !is_token(method) {
        return Err(bad_request("malformed method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad_request("malformed request-target"));
    }
    let http11 = match *version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => {
            return Err(ReadFailure::Reply(text_response(505, "only HTTP/1.x is supported")));
        }
        _ => return Err(bad_request("malformed HTTP version")),
    };

    let mut headers = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return Err(bad_request("obsolete header line folding"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad_request("malformed header line"));
        };
        if !is_token(name) {
            return Err(bad_request("malformed header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(bad_request("control character in header value"));
        }
        headers.push((name.to_string(), value.to_string()));
    }

    if find_header(&headers, "Transfer-Encoding").is_some() {
        return Err(ReadFailure::Reply(text_response(
            501,
            "Transfer-Encoding is not supported; send Content-Length",
        )));
    }
    let mut content_length: Option<usize> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length")) {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_request("malformed Content-Length"));
        }
        // Too many digits to parse is certainly too large.
        let n = v.parse::<usize>().unwrap_or(usize::MAX);
        if content_length.is_some_and(|prev| prev != n) {
            return Err(bad_request("conflicting Content-Length headers"));
        }
        content_length = Some(n);
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY_BYTES {
        return Err(ReadFailure::Reply(text_response(
            413,
            &format!("request body larger than {MAX_BODY_BYTES} bytes"),
        )));
    }

    let mut body = buf[head_len + sep_len..].to_vec();
    // Extra pipelined bytes are ignored: we answer one request per connection.
    body.truncate(content_length);
    if body.len() < content_length {
        let expects_continue = find_header(&headers, "Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if http11 && expects_continue {
            stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadFailure::Close)?;
        }
        body.reserve_exact(content_length - body.len());
        let mut rest = Read::take(&mut *stream, (content_length - body.len()) as u64);
        match rest.read_to_end(&mut body) {
            Ok(_) if body.len() == content_length => {}
            Ok(_) => return Err(bad_request("body shorter than Content-Length")),
            Err(_) => return Err(ReadFailure::Close),
        }
    }

    Ok(HttpRequest {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body,
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Serialises the response with our own `Content-Length` and `Connection:
/// close`; write errors only mean the client left.
fn write_response(stream: &mut TcpStream, response: &HttpResponse) {
    // A status line must carry three digits; anything else is a handler bug.
    let status = if (100..=999).contains(&response.status) {
        response.status
    } else {
        500
    };
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).into_bytes();
    for (name, value) in &response.headers {
        let framing = ["Content-Length", "Connection", "Transfer-Encoding"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        // Refuse header injection rather than emit a broken message.
        let unsafe_text = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
        if framing || !is_token(name) || unsafe_text(value) {
            continue;
        }
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body.len()).as_bytes());
    out.extend_from_slice(&response.body);
    if stream.write_all(&out).is_ok() {
        let _ = stream.flush();
    }
}

/// After an early answer, half-close and swallow what the client is still
/// sending (bounded), so closing does not reset the connection under it.
fn drain(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(DRAIN_TIME));
    let deadline = Instant::now() + DRAIN_TIME;
    let mut seen = 0usize;
    let mut chunk = [0u8; 16 * 1024];
    while seen < DRAIN_BYTES && Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_prefers_the_first_blank_line() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some((14, 4)));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nbody\r\n\r\n"), Some((14, 2)));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn tokens() {
        assert!(is_token("POST"));
        assert!(is_token("Content-Length"));
        assert!(!is_token(""));
        assert!(!is_token("Bad Name"));
        assert!(!is_token("a:b"));
    }
}
