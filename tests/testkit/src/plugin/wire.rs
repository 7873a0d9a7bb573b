//! HTTP/1.1 on the server side: reading requests (head parsed by `httparse`, bodies framed by
//! `Content-Length` or chunked encoding) and writing replies in the framings a test asks for.

use std::io::{self, Read, Write};

/// The media type of plugin protocol v1.2, used as the `Content-Type` of JSON replies.
pub(crate) const PLUGIN_MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 64;
const READ_CHUNK: usize = 8 * 1024;

/// One request, fully read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection cleanly between requests.
    Closed,
    /// Not acceptable HTTP: answer 400 with this text, then close.
    Bad(String),
    /// The connection failed (reset, or shut down by the plugin's own shutdown).
    Io,
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// Reads requests from one connection, keeping bytes that arrived beyond the current one.
#[derive(Debug, Default)]
pub(crate) struct RequestReader {
    buf: Vec<u8>,
}

enum BodyFraming {
    Length(usize),
    Chunked,
}

/// A parsed request head.
struct Head {
    len: usize,
    method: String,
    path: String,
    framing: BodyFraming,
    keep_alive: bool,
}

impl RequestReader {
    pub(crate) fn read(&mut self, stream: &mut impl Read) -> Result<Request, ReadError> {
        loop {
            if let Some(head) = self.parse_head()? {
                self.buf.drain(..head.len);
                let body = self.read_body(stream, head.framing)?;
                return Ok(Request {
                    method: head.method,
                    path: head.path,
                    body,
                    keep_alive: head.keep_alive,
                });
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(ReadError::Bad("request head too large".into()));
            }
            if self.fill(stream)? == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Bad("connection closed inside a request head".into())
                });
            }
        }
    }

    fn parse_head(&self) -> Result<Option<Head>, ReadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ReadError::Bad(format!("malformed request head: {e}"))),
        };
        let method = req.method.unwrap_or_default().to_owned();
        let path = req.path.unwrap_or_default().to_owned();
        let http_1_0 = req.version == Some(0);
        let mut framing = BodyFraming::Length(0);
        let mut connection = None;
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| ReadError::Bad(format!("header {} is not UTF-8", h.name)))?
                .trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| ReadError::Bad(format!("invalid Content-Length {value:?}")))?;
                if n > MAX_BODY_BYTES {
                    return Err(ReadError::Bad(format!(
                        "request body of {n} bytes too large"
                    )));
                }
                framing = BodyFraming::Length(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(ReadError::Bad(format!(
                        "unsupported Transfer-Encoding {value}"
                    )));
                }
                framing = BodyFraming::Chunked;
            } else if h.name.eq_ignore_ascii_case("connection") {
                connection = Some(value.to_ascii_lowercase());
            }
        }
        let keep_alive = match connection.as_deref() {
            Some("close") => false,
            Some("keep-alive") => true,
            _ => !http_1_0,
        };
        Ok(Some(Head {
            len,
            method,
            path,
            framing,
            keep_alive,
        }))
    }

    fn read_body(
        &mut self,
        stream: &mut impl Read,
        framing: BodyFraming,
    ) -> Result<Vec<u8>, ReadError> {
        loop {
            let complete = match framing {
                BodyFraming::Length(n) => (self.buf.len() >= n).then(|| {
                    let body = self.buf[..n].to_vec();
                    (body, n)
                }),
                BodyFraming::Chunked => decode_chunked(&self.buf)?,
            };
            if let Some((body, used)) = complete {
                self.buf.drain(..used);
                return Ok(body);
            }
            if self.buf.len() > MAX_BODY_BYTES + MAX_HEAD_BYTES {
                return Err(ReadError::Bad("request body too large".into()));
            }
            if self.fill(stream)? == 0 {
                return Err(ReadError::Bad(
                    "connection closed inside a request body".into(),
                ));
            }
        }
    }

    fn fill(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = loop {
            match stream.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
        n
    }
}

/// A complete chunked body at the start of `buf`: the decoded bytes and how many bytes of
/// `buf` it used; `None` while incomplete. Trailers are skipped.
fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ReadError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + line_end])
            .map_err(|_| ReadError::Bad("chunk size line is not UTF-8".into()))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Bad(format!("invalid chunk size {size_text:?}")))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if size > MAX_BODY_BYTES - body.len() {
            return Err(ReadError::Bad("request body too large".into()));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(ReadError::Bad("chunk not followed by CRLF".into()));
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// How a reply's body travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length`, one write.
    Length,
    /// `Transfer-Encoding: chunked`, the body split into several chunks, each its own write.
    Chunked,
    /// No length: the body ends when the connection closes.
    CloseDelimited,
    /// A `Content-Length` larger than the bytes that follow (the caller then closes).
    CutMidBody,
    /// Two `Content-Length` headers, a wrong one (16 more) and then the right one.
    ConflictingLengths,
}

impl Framing {
    /// Whether the connection must close after this reply.
    pub(crate) fn closes(self) -> bool {
        matches!(self, Framing::CloseDelimited | Framing::CutMidBody)
    }
}

/// Writes one reply. `keep_alive: false` (or a framing that closes) adds `Connection: close`.
pub(crate) fn write_reply(
    stream: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    framing: Framing,
    keep_alive: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(160 + body.len());
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n",
        reason(status)
    )?;
    match framing {
        Framing::Length => write!(out, "Content-Length: {}\r\n", body.len())?,
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::CloseDelimited => {}
        Framing::CutMidBody => write!(out, "Content-Length: {}\r\n", body.len() + 64)?,
        Framing::ConflictingLengths => write!(
            out,
            "Content-Length: {}\r\nContent-Length: {}\r\n",
            body.len() + 16,
            body.len()
        )?,
    }
    if !keep_alive || framing.closes() {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    match framing {
        Framing::Length | Framing::CloseDelimited | Framing::ConflictingLengths => {
            out.extend_from_slice(body)
        }
        Framing::CutMidBody => out.extend_from_slice(&body[..body.len() / 2]),
        Framing::Chunked => {
            // Head and first chunk go together; the rest follow as separate writes so the
            // client sees the body arrive in pieces.
            let pieces = split_in_chunks(body);
            for (i, piece) in pieces.iter().enumerate() {
                write!(out, "{:x}\r\n", piece.len())?;
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
                if i + 1 < pieces.len() {
                    stream.write_all(&out)?;
                    stream.flush()?;
                    out.clear();
                }
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// Up to four non-empty pieces of `body` (none for an empty body).
fn split_in_chunks(body: &[u8]) -> Vec<&[u8]> {
    let size = body.len().div_ceil(4).max(1);
    body.chunks(size).collect()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<Result<Request, String>> {
        let mut reader = RequestReader::default();
        let mut stream = input;
        let mut out = Vec::new();
        loop {
            match reader.read(&mut stream) {
                Ok(r) => out.push(Ok(r)),
                Err(ReadError::Closed) => return out,
                Err(ReadError::Bad(e)) => {
                    out.push(Err(e));
                    return out;
                }
                Err(ReadError::Io) => panic!("io error from a slice"),
            }
        }
    }

    #[test]
    fn pipelined_requests_with_length_and_chunked_bodies() {
        let input = b"POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"Name\":\"a\"}\
            POST /VolumeDriver.List HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{\r\n1;x=y\r\n}\r\n0\r\n\r\n";
        let got = read_all(input);
        assert_eq!(got.len(), 3);
        let bodies: Vec<_> = got
            .iter()
            .map(|r| r.as_ref().map(|r| r.body.clone()))
            .collect();
        assert_eq!(bodies[0], Ok(Vec::new()));
        assert_eq!(bodies[1], Ok(b"{\"Name\":\"a\"}".to_vec()));
        assert_eq!(bodies[2], Ok(b"{}".to_vec()));
        assert_eq!(got[2].as_ref().map(|r| r.keep_alive), Ok(false));
        assert_eq!(
            got[0].as_ref().map(|r| r.path.as_str()),
            Ok("/Plugin.Activate")
        );
    }

    #[test]
    fn garbage_and_truncation_are_bad_requests_not_panics() {
        for input in [
            &b"\x00\x01garbage\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTT",
        ] {
            let got = read_all(input);
            assert!(matches!(got.last(), Some(Err(_))), "{input:?} gave {got:?}");
        }
    }

    #[test]
    fn replies_carry_the_requested_framing() {
        let mut out = Vec::new();
        write_reply(
            &mut out,
            200,
            "text/plain",
            b"hello world",
            Framing::Chunked,
            true,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("Transfer-Encoding: chunked\r\n"));
        assert!(text.ends_with("\r\n\r\n3\r\nhel\r\n3\r\nlo \r\n3\r\nwor\r\n2\r\nld\r\n0\r\n\r\n"));

        let mut out = Vec::new();
        write_reply(
            &mut out,
            500,
            "a/b",
            b"0123456789",
            Framing::CutMidBody,
            true,
        )
        .expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(text.contains("Content-Length: 74\r\nConnection: close\r\n\r\n01234"));
        assert!(text.ends_with("\r\n\r\n01234"));
    }
}
