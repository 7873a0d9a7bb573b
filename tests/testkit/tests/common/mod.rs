//! A hand-written HTTP client for the testkit's own tests: it sends bytes we choose and
//! decodes replies independently of the server code it checks.

#![allow(dead_code)] // each test file uses a different part

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A reply exactly as it came off the socket, plus its decoded parts.
#[derive(Debug)]
pub struct RawReply {
    /// Every byte the server sent before closing.
    pub wire: Vec<u8>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The bytes after the head, still framed.
    pub framed_body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body with its framing removed (chunked decoded, Content-Length applied).
    pub fn body(&self) -> Vec<u8> {
        if self.header("Transfer-Encoding") == Some("chunked") {
            return dechunk(&self.framed_body).expect("well-formed chunked body");
        }
        match self.header("Content-Length") {
            Some(n) => {
                let n: usize = n.parse().expect("numeric Content-Length");
                assert!(
                    self.framed_body.len() >= n,
                    "body shorter than Content-Length"
                );
                self.framed_body[..n].to_vec()
            }
            None => self.framed_body.clone(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).expect("JSON body")
    }
}

/// The request bytes for `POST /endpoint` with `body` and `Connection: close`.
pub fn request(endpoint: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /{endpoint} HTTP/1.1\r\nHost: plugin\r\n\
         Accept: application/vnd.docker.plugins.v1.2+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends raw bytes and reads until the server closes the connection.
pub fn exchange(socket: &Path, bytes: &[u8]) -> RawReply {
    let mut stream = UnixStream::connect(socket).expect("connect to plugin");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(bytes).expect("send request");
    let mut wire = Vec::new();
    stream.read_to_end(&mut wire).expect("read reply");
    parse(wire)
}

/// `POST /endpoint` with a JSON body, on its own connection.
pub fn post(socket: &Path, endpoint: &str, body: &str) -> RawReply {
    exchange(socket, &request(endpoint, body))
}

/// Splits a complete reply into status, headers and framed body.
pub fn parse(wire: Vec<u8>) -> RawReply {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(&wire) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "incomplete or bad reply head ({other:?}): {:?}",
            String::from_utf8_lossy(&wire)
        ),
    };
    let status = resp.code.expect("status");
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let framed_body = wire[head_len..].to_vec();
    RawReply {
        wire,
        status,
        headers,
        framed_body,
    }
}

/// Decodes a complete chunked body; also returns the number of chunks.
pub fn dechunk_counted(mut rest: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut body = Vec::new();
    let mut chunks = 0;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("no CRLF after chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_text, 16).map_err(|e| e.to_string())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return if rest == b"\r\n" {
                Ok((body, chunks))
            } else {
                Err(format!("bytes after last chunk: {rest:?}"))
            };
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err("chunk shorter than its size".into());
        }
        body.extend_from_slice(&rest[..size]);
        chunks += 1;
        rest = &rest[size + 2..];
    }
}

pub fn dechunk(framed: &[u8]) -> Result<Vec<u8>, String> {
    dechunk_counted(framed).map(|(body, _)| body)
}
