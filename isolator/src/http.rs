//! A minimal blocking HTTP/1.1 client for plugin calls: a POST over a Unix socket or TCP, with
//! a connect-retry window, a per-request deadline and a reply-size cap.
//!
//! No async runtime: this code runs inside a Mesos agent process. Replies may be framed by
//! `Content-Length`, chunked encoding or connection close; `httparse` reads the head. A reply
//! whose length could be read two ways (RFC 9112 §6.3: conflicting or invalid
//! `Content-Length`, `Content-Length` beside `Transfer-Encoding`, a coding other than a single
//! `chunked`) is an [`HttpError::Framing`] and its connection is dropped (see `framing_of`).
//!
//! # Kept connections
//!
//! With an [`Idle`] set, a connection whose reply allows it (HTTP/1.1, no `Connection: close`,
//! a body framed by length or chunks, nothing sent after it) is kept for the next request, as
//! Docker's own plugin client does. A kept connection is only used again within [`IDLE_REUSE`]
//! of its last reply — far below any plugin server's idle timeout, so the plugin does not close
//! it just as a request goes out — and only if `poll` shows the plugin has not closed it or
//! sent anything since. Should writing the request to it still fail, the plugin cannot have
//! acted on an incomplete request, and it is sent once on a new connection. A request whose
//! reply is lost *after* it was sent is never sent again (a `Mount` need not be idempotent):
//! that is reported as the call getting no answer, exactly as on a new connection.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::discovery::PluginAddr;
use crate::render;

/// The media type of plugin protocol v1.2 (`Accept` and `Content-Type`).
pub const PLUGIN_MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// Largest reply head we accept.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A reply: status and (de-chunked) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Transport failures; the plugin client adds driver and endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {addr} (retried for {}): {cause}", render::duration(*.waited))]
    Connect {
        addr: String,
        waited: Duration,
        cause: io::Error,
    },
    #[error("no complete reply within the deadline")]
    Timeout,
    #[error("{0}")]
    Io(io::Error),
    #[error("malformed HTTP reply: {0}")]
    Malformed(String),
    #[error("reply body larger than {0} bytes")]
    TooLarge(usize),
    /// The reply's length cannot be told for sure (RFC 9112 §6.3): the connection is dropped.
    #[error("ambiguous reply framing: {0}")]
    Framing(String),
}

/// When to give up.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connection failures are retried until this instant (capped by `deadline`).
    pub connect_until: Instant,
    /// The whole request must be answered by this instant.
    pub deadline: Instant,
    pub max_body: usize,
}

#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Whether the peer has neither closed the connection nor sent anything on it: nothing to
    /// read, no hang-up, no error, right now.
    fn quiet(&self) -> bool {
        let fd = match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        };
        matches!(crate::sys::poll_readable(fd), Ok(false))
    }

    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        // A zero timeout means "block forever" to the OS; never pass it.
        let t = Some(t.max(Duration::from_millis(1)));
        match self {
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HttpError::Timeout)
    } else {
        Ok(left)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Failures worth retrying within the connect window: nobody listening (yet).
fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound | io::ErrorKind::ConnectionReset
    ) || e.raw_os_error() == Some(libc::EAGAIN)
}

fn connect_once(addr: &PluginAddr, timeout: Duration) -> io::Result<Stream> {
    match addr {
        PluginAddr::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
        PluginAddr::Tcp(hostport) => {
            use std::net::ToSocketAddrs;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
            for sa in hostport.to_socket_addrs()? {
                match TcpStream::connect_timeout(&sa, timeout) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

fn connect(addr: &PluginAddr, limits: &Limits) -> Result<Stream, HttpError> {
    let started = Instant::now();
    let until = limits.connect_until.min(limits.deadline);
    let mut backoff = Duration::from_millis(10);
    let refused = |cause| HttpError::Connect {
        addr: addr.to_string(),
        waited: started.elapsed(),
        cause,
    };
    let mut last_retryable: Option<io::Error> = None;
    loop {
        let left = limits.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(last_retryable.map(refused).unwrap_or(HttpError::Timeout));
        }
        match connect_once(addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if is_retryable(&e) && Instant::now() < until => {
                std::thread::sleep(backoff.min(until.saturating_duration_since(Instant::now())));
                backoff = (backoff * 2).min(Duration::from_millis(500));
                last_retryable = Some(e);
            }
            Err(e) if is_timeout(&e) => return Err(HttpError::Timeout),
            Err(source) => return Err(refused(source)),
        }
    }
}

/// How long after its last reply a kept connection may carry another request.
pub const IDLE_REUSE: Duration = Duration::from_secs(1);

/// Kept connections per plugin.
const MAX_IDLE: usize = 4;

/// Connections to one plugin kept for the next request (see the module's *Kept connections*).
#[derive(Debug, Default)]
pub struct Idle(std::sync::Mutex<Vec<(Stream, Instant)>>);

impl Idle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Stream, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kept connection fit for a request now, if any (the others are closed).
    fn take(&self) -> Option<Stream> {
        loop {
            let (stream, since) = self.lock().pop()?;
            if since.elapsed() < IDLE_REUSE && stream.quiet() {
                return Some(stream);
            }
        }
    }

    fn keep(&self, stream: Stream) {
        let mut kept = self.lock();
        if kept.len() < MAX_IDLE {
            kept.push((stream, Instant::now()));
        }
    }

    /// How many connections are kept now (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn write_request(stream: &mut Stream, request: &[u8], limits: &Limits) -> Result<(), HttpError> {
    stream
        .set_timeouts(remaining(limits.deadline)?)
        .map_err(HttpError::Io)?;
    stream.write_all(request).map_err(|e| {
        if is_timeout(&e) {
            HttpError::Timeout
        } else {
            HttpError::Io(e)
        }
    })
}

/// Sends `POST path` with a JSON `body` and reads the whole reply: on a connection kept in
/// `idle` if there is one fit for it, keeping the connection there afterwards if the reply
/// allows; with no `idle`, on a new connection closed after the reply.
pub fn post(
    idle: Option<&Idle>,
    addr: &PluginAddr,
    path: &str,
    body: &[u8],
    limits: &Limits,
) -> Result<Response, HttpError> {
    let connection = if idle.is_some() {
        ""
    } else {
        "Connection: close\r\n"
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nUser-Agent: dvdi/{}\r\nAccept: {PLUGIN_MEDIA_TYPE}\r\n\
         Content-Type: {PLUGIN_MEDIA_TYPE}\r\nContent-Length: {}\r\n{connection}\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let mut stream = match idle.and_then(Idle::take) {
        Some(mut kept) => match write_request(&mut kept, &request, limits) {
            Ok(()) => kept,
            Err(HttpError::Io(_)) => {
                // Closed under us before the request was whole: nothing was acted on.
                let mut fresh = connect(addr, limits)?;
                write_request(&mut fresh, &request, limits)?;
                fresh
            }
            Err(e) => return Err(e),
        },
        None => {
            let mut fresh = connect(addr, limits)?;
            write_request(&mut fresh, &request, limits)?;
            fresh
        }
    };
    let (response, reusable) = read_reply_keeping(
        &mut DeadlineReader {
            stream: &mut stream,
            deadline: limits.deadline,
        },
        limits.max_body,
    )?;
    if let Some(idle) = idle.filter(|_| reusable) {
        idle.keep(stream);
    }
    Ok(response)
}

/// A connection read under a deadline: each read gets the time left as its timeout, and a read
/// once the deadline has passed fails with [`io::ErrorKind::TimedOut`].
struct DeadlineReader<'a> {
    stream: &'a mut Stream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_timeouts(left)?;
        self.stream.read(buf)
    }
}

/// Parses one complete reply held in memory, exactly as [`post`] reads one from a connection
/// (the same code: [`read_reply`]). The end of `bytes` is the connection's close. A public
/// entry point for tests and fuzzing.
pub fn parse_reply(bytes: &[u8], max_body: usize) -> Result<Response, HttpError> {
    read_reply(&mut &bytes[..], max_body)
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

/// Reads one reply from `stream` up to the end of its body: skips 1xx replies, then frames the
/// body by `Transfer-Encoding: chunked`, `Content-Length` or the end of the stream, refusing a
/// body larger than `max_body`. A read that times out (`WouldBlock`/`TimedOut`) is
/// [`HttpError::Timeout`]. [`post`] reads the connection with it; [`parse_reply`] a byte slice.
pub fn read_reply<R: Read>(stream: &mut R, max_body: usize) -> Result<Response, HttpError> {
    read_reply_keeping(stream, max_body).map(|(response, _)| response)
}

/// [`read_reply`], also saying whether the connection may carry another request: an HTTP/1.1
/// reply without `Connection: close`, its body framed by length or chunks, and nothing read
/// beyond it.
fn read_reply_keeping<R: Read>(
    stream: &mut R,
    max_body: usize,
) -> Result<(Response, bool), HttpError> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    // One page: a plugin's reply is usually a few hundred bytes, and a short-lived `dvdcli`
    // pays a page fault for every stack page this frame touches (16 KiB here was four).
    let mut chunk = [0u8; 4 * 1024];
    let mut eof = false;
    let mut read_more = |buf: &mut Vec<u8>, eof: &mut bool| -> Result<(), HttpError> {
        match stream.read(&mut chunk) {
            Ok(0) => *eof = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => return Err(HttpError::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HttpError::Io(e)),
        }
        Ok(())
    };

    // The head.
    let (status, framing, head_len, keep_alive) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                let framing = framing_of(resp.version, status, resp.headers)?;
                // 1xx replies are followed by the real one.
                if (100..200).contains(&status) {
                    buf.drain(..n);
                    continue;
                }
                let keep_alive = resp.version == Some(1) && !closes(resp.headers);
                break (status, framing, n, keep_alive);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(HttpError::Malformed("reply head larger than 64 KiB".into()));
                }
                if eof {
                    return Err(HttpError::Malformed(if buf.is_empty() {
                        "connection closed without a reply".into()
                    } else {
                        "connection closed inside the reply head".into()
                    }));
                }
                read_more(&mut buf, &mut eof)?;
            }
            Err(e) => return Err(HttpError::Malformed(e.to_string())),
        }
    };
    buf.drain(..head_len);

    // The body.
    let framed = !matches!(framing, Framing::Close);
    let body = match framing {
        Framing::Length(n) => {
            if n > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
            while buf.len() < n {
                if eof {
                    return Err(HttpError::Malformed(format!(
                        "connection closed after {} of {n} body bytes",
                        buf.len()
                    )));
                }
                read_more(&mut buf, &mut eof)?;
            }
            let beyond = buf.len() > n;
            buf.truncate(n);
            if beyond {
                // Bytes after the reply: the connection is not clean.
                return Ok((Response { status, body: buf }, false));
            }
            buf
        }
        Framing::Close => {
            while !eof {
                if buf.len() > max_body {
                    return Err(HttpError::TooLarge(max_body));
                }
                read_more(&mut buf, &mut eof)?;
            }
            if buf.len() > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
            buf
        }
        Framing::Chunked => {
            let mut chunked = ChunkedBody::default();
            loop {
                match chunked.decode(&mut buf, max_body)? {
                    Some(body) if !buf.is_empty() => return Ok((Response { status, body }, false)),
                    Some(body) => break body,
                    None if eof => {
                        return Err(HttpError::Malformed(
                            "connection closed inside a chunked body".into(),
                        ))
                    }
                    None => read_more(&mut buf, &mut eof)?,
                }
            }
        }
    };
    Ok((Response { status, body }, framed && keep_alive && !eof))
}

/// Whether the reply's `Connection` header says the connection closes after it.
fn closes(headers: &[httparse::Header<'_>]) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("connection")
            && String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
    })
}

/// Whether a reply to a request has no body whatever its headers say (RFC 9112 §6.3, rule 1:
/// 1xx, 204 and 304; plugin calls are never `HEAD` or `CONNECT`).
fn never_has_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// How the reply's body is framed, per RFC 9112 §6.3. Anything that could let the client and
/// the plugin disagree about where the reply ends is a [`HttpError::Framing`], and the
/// connection is then dropped, never kept (a body read with the wrong length would leave the
/// rest of it to be read as the reply to the next request):
///
/// - `Transfer-Encoding` beside `Content-Length`, in an HTTP/1.0 reply, or with any coding
///   but a single `chunked` (we decode no other coding, and a final coding other than
///   `chunked` leaves the length unknown);
/// - a `Content-Length` that is not a plain decimal number (no sign, no spaces inside, no
///   overflow), or several `Content-Length` values (repeated headers or a comma list) that
///   differ. Identical repeated values are accepted, as RFC 9112 §6.3 allows: they cannot be
///   read two ways.
fn framing_of(
    version: Option<u8>,
    status: u16,
    headers: &[httparse::Header<'_>],
) -> Result<Framing, HttpError> {
    let mut codings: Vec<String> = Vec::new();
    let mut length: Option<usize> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value);
            let before = codings.len();
            codings.extend(
                v.split(',')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| !t.is_empty()),
            );
            if codings.len() == before {
                return Err(framing("an empty Transfer-Encoding"));
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for item in h.value.split(|&b| b == b',') {
                let n = content_length(item)?;
                match length {
                    Some(m) if m != n => {
                        return Err(framing(format!(
                            "conflicting Content-Length values {m} and {n}"
                        )))
                    }
                    _ => length = Some(n),
                }
            }
        }
    }
    if never_has_body(status) {
        return Ok(Framing::Length(0));
    }
    if codings.is_empty() {
        return Ok(length.map_or(Framing::Close, Framing::Length));
    }
    if length.is_some() {
        return Err(framing("both Transfer-Encoding and Content-Length"));
    }
    if version != Some(1) {
        return Err(framing("Transfer-Encoding in an HTTP/1.0 reply"));
    }
    if codings != ["chunked"] {
        return Err(framing(format!(
            "Transfer-Encoding {:?} (only a single \"chunked\" is read)",
            codings.join(", ")
        )));
    }
    Ok(Framing::Chunked)
}

/// One `Content-Length` value: `1*DIGIT`, optional whitespace around it, no overflow.
fn content_length(item: &[u8]) -> Result<usize, HttpError> {
    let digits = item.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(framing(format!(
            "invalid Content-Length {:?}",
            String::from_utf8_lossy(item).trim()
        )));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or_else(|| framing("a Content-Length too large to hold"))
}

fn framing(what: impl std::fmt::Display) -> HttpError {
    HttpError::Framing(what.to_string())
}

/// Longest chunk-size line (size and extensions) we accept.
const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;
/// Largest trailer block (after the last chunk) we accept.
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// A chunked body as it arrives. Each [`ChunkedBody::decode`] consumes the complete chunks at
/// the start of the buffer, so the bytes of a reply are parsed once however it is split into
/// reads, and the buffer holds at most one chunk, one size line or the trailers, plus a read.
/// Size lines and trailers are bounded: without that a plugin could stream an endless chunk
/// extension or trailer and grow the agent's memory until the deadline.
#[derive(Debug, Default)]
struct ChunkedBody {
    body: Vec<u8>,
    /// After the last (zero-size) chunk: how many trailer bytes were searched for their end.
    trailers_searched: Option<usize>,
}

fn chunk_line_too_long() -> HttpError {
    HttpError::Malformed("chunk size line longer than 4 KiB".into())
}

fn trailers_too_large() -> HttpError {
    HttpError::Malformed("chunked trailers larger than 64 KiB".into())
}

impl ChunkedBody {
    /// Consumes what it can of `buf`: `Some(body)` once the last chunk and the trailers are in,
    /// `None` while more bytes are needed.
    fn decode(&mut self, buf: &mut Vec<u8>, max_body: usize) -> Result<Option<Vec<u8>>, HttpError> {
        let mut used = 0;
        let done = self.advance(buf, &mut used, max_body);
        buf.drain(..used);
        Ok(done?.then(|| std::mem::take(&mut self.body)))
    }

    /// Parses from `buf[*pos..]`, moving `*pos` past each complete chunk; true when done.
    fn advance(&mut self, buf: &[u8], pos: &mut usize, max_body: usize) -> Result<bool, HttpError> {
        loop {
            if let Some(searched) = self.trailers_searched {
                // Trailers end with an empty line; accept a closing CRLF or any trailer block.
                let rest = &buf[*pos..];
                let end = if rest.starts_with(b"\r\n") {
                    Some(2)
                } else {
                    let from = searched.saturating_sub(3);
                    rest[from..]
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|i| from + i + 4)
                };
                return match end {
                    Some(end) if end > MAX_TRAILER_BYTES => Err(trailers_too_large()),
                    Some(end) => {
                        *pos += end;
                        Ok(true)
                    }
                    None if rest.len() >= MAX_TRAILER_BYTES => Err(trailers_too_large()),
                    None => {
                        self.trailers_searched = Some(rest.len());
                        Ok(false)
                    }
                };
            }
            let (skip, size) = match httparse::parse_chunk_size(&buf[*pos..]) {
                Ok(httparse::Status::Complete(v)) => v,
                Ok(httparse::Status::Partial) if buf.len() - *pos >= MAX_CHUNK_LINE_BYTES => {
                    return Err(chunk_line_too_long())
                }
                Ok(httparse::Status::Partial) => return Ok(false),
                Err(_) => return Err(HttpError::Malformed("invalid chunk size".into())),
            };
            if skip > MAX_CHUNK_LINE_BYTES {
                return Err(chunk_line_too_long());
            }
            let size = usize::try_from(size).map_err(|_| HttpError::TooLarge(max_body))?;
            if self.body.len().saturating_add(size) > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
            let data = *pos + skip;
            if size == 0 {
                *pos = data;
                self.trailers_searched = Some(0);
                continue;
            }
            // Without a cap (`max_body` near `usize::MAX`) a chunk size can overflow the sum:
            // such a chunk could never be held, so it is too large.
            let end = data
                .checked_add(size)
                .and_then(|end| end.checked_add(2))
                .ok_or(HttpError::TooLarge(max_body))?;
            if buf.len() < end {
                // Its size line is parsed again with the rest of the chunk (at most 4 KiB).
                return Ok(false);
            }
            if &buf[data + size..end] != b"\r\n" {
                return Err(HttpError::Malformed("chunk not followed by CRLF".into()));
            }
            self.body.extend_from_slice(&buf[data..data + size]);
            *pos = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Decodes `bytes` as a chunked body that arrived in one read.
    fn decode_chunked(bytes: &[u8], max_body: usize) -> Result<Option<Vec<u8>>, HttpError> {
        ChunkedBody::default().decode(&mut bytes.to_vec(), max_body)
    }

    /// A connection that sends `head` and then repeats `tail` for ever, `step` bytes a read.
    struct Endless {
        head: Vec<u8>,
        tail: &'static [u8],
        sent: usize,
        step: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len());
            for b in &mut buf[..n] {
                *b = match self.head.get(self.sent) {
                    Some(&h) => h,
                    None => self.tail[(self.sent - self.head.len()) % self.tail.len()],
                };
                self.sent += 1;
            }
            Ok(n)
        }
    }

    const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn chunked_bodies_decode_incrementally() {
        let full = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                decode_chunked(&full[..cut], 100).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        assert_eq!(
            decode_chunked(full, 100).unwrap(),
            Some(b"Wikipedia".to_vec())
        );
        assert!(matches!(
            decode_chunked(full, 5),
            Err(HttpError::TooLarge(5))
        ));
        assert!(decode_chunked(b"zz\r\n", 100).is_err());
        assert!(decode_chunked(b"2\r\nabXY", 100).is_err());

        // Byte by byte into one decoder: complete chunks leave the buffer as they are read.
        let mut chunked = ChunkedBody::default();
        let mut buf = Vec::new();
        for (i, b) in full.iter().enumerate() {
            buf.push(*b);
            let got = chunked.decode(&mut buf, 100).unwrap();
            assert!(buf.len() <= 9, "{buf:?}");
            assert_eq!(got.is_some(), i == full.len() - 1, "at {i}");
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn many_tiny_chunks_trickled_in_take_linear_time() {
        // Found in review while fuzzing: every read re-decoded the whole chunked body from its
        // start, so 64 KiB of one-byte chunks arriving a byte at a time took about two minutes
        // of CPU (a 4 MiB body of one-byte chunks in 16 KiB reads, 40 s).
        let mut reply = CHUNKED_HEAD.to_vec();
        for _ in 0..64 * 1024 {
            reply.extend_from_slice(b"1\r\nx\r\n");
        }
        reply.extend_from_slice(b"0\r\n\r\n");
        let started = Instant::now();
        let mut conn = Endless {
            head: reply,
            tail: b"\0",
            sent: 0,
            step: 1,
        };
        let r = read_reply(&mut conn, 1 << 20).unwrap();
        assert_eq!(r.body.len(), 64 * 1024);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }

    #[test]
    fn endless_chunk_extensions_and_trailers_are_refused() {
        // httparse accepts a chunk extension of any length, and the trailers were searched for
        // their end without a bound: a plugin streaming either grew the reply buffer until the
        // deadline.
        for (tail, what) in [
            (&b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..], "chunk size line"),
            (&b"X-Trailer: y\r\n"[..], "trailers"),
        ] {
            let head = match what {
                "trailers" => [CHUNKED_HEAD, b"1\r\nx\r\n0\r\n"].concat(),
                _ => CHUNKED_HEAD.to_vec(),
            };
            let mut conn = Endless {
                head,
                tail,
                sent: 0,
                step: 1000,
            };
            let err = read_reply(&mut conn, 1 << 20).unwrap_err();
            assert!(
                matches!(&err, HttpError::Malformed(m) if m.contains(what)),
                "{err}"
            );
            assert!(conn.sent < 200 * 1024, "read {} bytes", conn.sent);
        }
    }

    #[test]
    fn size_line_and_trailer_limits_do_not_depend_on_how_the_reply_is_split() {
        let line = |len: usize| {
            let mut l = b"1;".to_vec();
            l.resize(len - 2, b'e');
            l.extend_from_slice(b"\r\n");
            l
        };
        for (len, ok) in [
            (MAX_CHUNK_LINE_BYTES, true),
            (MAX_CHUNK_LINE_BYTES + 1, false),
        ] {
            let reply = [CHUNKED_HEAD, &line(len), b"x\r\n0\r\n\r\n"].concat();
            for step in [1, 7, 4096, 1 << 20] {
                let mut conn = Endless {
                    head: reply.clone(),
                    tail: b"\0",
                    sent: 0,
                    step,
                };
                let got = read_reply(&mut conn, 100);
                assert_eq!(got.is_ok(), ok, "line of {len} in reads of {step}: {got:?}");
            }
        }
    }

    #[test]
    fn a_chunk_size_near_usize_max_is_too_large_without_a_cap() {
        // Found by fuzzing (http_reply): with max_reply_bytes set to usize::MAX, this chunk
        // size overflowed `pos + size + 2` and panicked.
        let body = b"fffffffffffffff0\r\nab\r\n0\r\n\r\n";
        assert!(matches!(
            decode_chunked(body, usize::MAX),
            Err(HttpError::TooLarge(usize::MAX))
        ));
        let reply = [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            body,
        ]
        .concat();
        assert!(matches!(
            parse_reply(&reply, usize::MAX),
            Err(HttpError::TooLarge(_))
        ));
    }

    /// A reply with these header lines and a body of `{}`.
    fn reply_with(headers: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\n{headers}\r\n{{}}").into_bytes()
    }

    #[test]
    fn ambiguous_framing_is_an_error_never_a_guess() {
        // Found in review (issue 10, finding 6): two different Content-Lengths were read with
        // the last one, and what the first one covered beyond it could be taken as the next
        // call's reply on a kept connection.
        for (headers, want) in [
            ("Content-Length: 2\r\nContent-Length: 7\r\n", "conflicting"),
            ("Content-Length: 7\r\nContent-Length: 2\r\n", "conflicting"),
            ("Content-Length: 2, 7\r\n", "conflicting"),
            ("Content-Length: +2\r\n", "invalid Content-Length"),
            ("Content-Length: -2\r\n", "invalid Content-Length"),
            ("Content-Length: 0x2\r\n", "invalid Content-Length"),
            ("Content-Length: 2 2\r\n", "invalid Content-Length"),
            ("Content-Length: \r\n", "invalid Content-Length"),
            ("Content-Length: 2,\r\n", "invalid Content-Length"),
            (
                "Content-Length: 99999999999999999999999999\r\n",
                "too large to hold",
            ),
            (
                "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                "both Transfer-Encoding and Content-Length",
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
                "both Transfer-Encoding and Content-Length",
            ),
            ("Transfer-Encoding: gzip\r\n", "only a single"),
            ("Transfer-Encoding: chunked, gzip\r\n", "only a single"),
            ("Transfer-Encoding: gzip, chunked\r\n", "only a single"),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "only a single",
            ),
            ("Transfer-Encoding: \r\n", "empty Transfer-Encoding"),
        ] {
            let err = parse_reply(&reply_with(headers), 100).unwrap_err();
            assert!(
                matches!(&err, HttpError::Framing(m) if m.contains(want)),
                "{headers:?}: {err}"
            );
        }
        let err = parse_reply(
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            100,
        )
        .unwrap_err();
        assert!(matches!(err, HttpError::Framing(_)), "{err}");
    }

    #[test]
    fn unambiguous_framing_is_read() {
        let ok = |headers: &str| parse_reply(&reply_with(headers), 100).map(|r| r.body);
        // Identical repeated values cannot be read two ways (RFC 9112 §6.3 allows them).
        assert_eq!(
            ok("Content-Length: 2\r\nContent-Length: 2\r\n").unwrap(),
            b"{}"
        );
        assert_eq!(ok("Content-Length: 2, 2\r\n").unwrap(), b"{}");
        assert_eq!(ok("content-length:  002 \r\n").unwrap(), b"{}");
        assert_eq!(
            parse_reply(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                100
            )
            .unwrap()
            .body,
            b"{}"
        );
        // 204 and 304 have no body whatever they say: nothing is read after the head.
        let (r, keep) = read_reply_keeping(
            &mut &b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"[..],
            100,
        )
        .unwrap();
        assert!(r.body.is_empty() && keep);
    }

    #[test]
    fn parse_reply_reads_every_framing() {
        let ok = |status, body: &[u8]| Response {
            status,
            body: body.to_vec(),
        };
        let length = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
        assert_eq!(parse_reply(length, 100).unwrap(), ok(200, b"{}"));
        let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 X\r\n\
            Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_reply(chunked, 100).unwrap(), ok(500, b"abc"));
        let close = b"HTTP/1.0 404 Not Found\r\n\r\nno such page";
        assert_eq!(parse_reply(close, 100).unwrap(), ok(404, b"no such page"));
        assert!(matches!(parse_reply(close, 4), Err(HttpError::TooLarge(4))));
        assert!(matches!(
            parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse_reply(b"", 100),
            Err(HttpError::Malformed(_))
        ));
    }
}
