//! The small-query test's load client: one keep-alive HTTP/1.1 connection
//! per thread, the request encoded once and written as bytes, the answer
//! read by `Content-Length` or chunked framing. On a machine shared by the
//! client and the engine, a general client (URL parsing, header maps,
//! buffers per request) would take CPU from the engine it measures; this
//! one costs a few microseconds per request, like wrk. Every engine is
//! measured with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::query::Request;

pub struct Conn {
    addr: String,
    request: Vec<u8>,
    stream: Option<BufReader<TcpStream>>,
    timeout: Duration,
}

/// `host:port` of an `http://host:port` base URL.
fn authority(base: &str) -> Result<&str, String> {
    let rest = base.strip_prefix("http://").ok_or_else(|| format!("{base}: only http:// URLs are supported"))?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

impl Conn {
    pub fn new(base: &str, r: &Request, timeout: Duration) -> Result<Conn, String> {
        let addr = authority(base)?.to_string();
        let method = if r.body.is_some() { "POST" } else { "GET" };
        let mut request = format!("{method} {} HTTP/1.1\r\nHost: {addr}\r\n", r.path).into_bytes();
        for (k, v) in &r.headers {
            request.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if let Some(b) = &r.body {
            request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
            request.extend_from_slice(b);
        } else {
            request.extend_from_slice(b"\r\n");
        }
        Ok(Conn { addr, request, stream: None, timeout })
    }

    /// Sends the request once; the status, the body and the wall time. A
    /// broken keep-alive connection is reopened once.
    pub fn send(&mut self, body: &mut Vec<u8>) -> Result<(u16, Duration), String> {
        let start = Instant::now();
        let reused = self.stream.is_some();
        match self.exchange(body) {
            Ok(status) => Ok((status, start.elapsed())),
            Err(_) if reused => {
                self.stream = None;
                let status = self.exchange(body)?;
                Ok((status, start.elapsed()))
            }
            Err(e) => Err(e),
        }
    }

    fn exchange(&mut self, body: &mut Vec<u8>) -> Result<u16, String> {
        let r = self.try_exchange(body).map_err(|e| format!("{}: {e}", self.addr));
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    fn try_exchange(&mut self, body: &mut Vec<u8>) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let Some(s) = self.stream.as_mut() else { return Err(bad("no connection")) };
        s.get_mut().write_all(&self.request)?;
        let head = read_head(s)?;
        body.clear();
        match head.length {
            Some(n) => {
                body.resize(n, 0);
                s.read_exact(body)?;
            }
            None if head.chunked => read_chunked(s, body)?,
            None => {
                // Neither: the body ends with the connection.
                s.read_to_end(body)?;
                self.stream = None;
            }
        }
        if head.close {
            self.stream = None;
        }
        Ok(head.status)
    }
}

struct Head {
    status: u16,
    length: Option<usize>,
    chunked: bool,
    close: bool,
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

fn read_line(s: &mut impl BufRead, line: &mut String) -> std::io::Result<()> {
    line.clear();
    if s.read_line(line)? == 0 {
        return Err(bad("connection closed"));
    }
    Ok(())
}

fn read_head(s: &mut impl BufRead) -> std::io::Result<Head> {
    let mut line = String::new();
    read_line(s, &mut line)?;
    let status = line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| bad("malformed status line"))?;
    let mut head = Head { status, length: None, chunked: false, close: false };
    loop {
        read_line(s, &mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(head);
        }
        let Some((k, v)) = l.split_once(':') else { continue };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            head.length = Some(v.parse().map_err(|_| bad("malformed Content-Length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            head.close = v.eq_ignore_ascii_case("close");
        }
    }
}

fn read_chunked(s: &mut impl BufRead, body: &mut Vec<u8>) -> std::io::Result<()> {
    let mut line = String::new();
    loop {
        read_line(s, &mut line)?;
        let size = line.trim_end().split(';').next().unwrap_or("");
        let n = usize::from_str_radix(size.trim(), 16).map_err(|_| bad("malformed chunk size"))?;
        if n == 0 {
            // Trailers, then the empty line.
            loop {
                read_line(s, &mut line)?;
                if line.trim_end().is_empty() {
                    return Ok(());
                }
            }
        }
        let at = body.len();
        body.resize(at + n, 0);
        s.read_exact(&mut body[at..])?;
        read_line(s, &mut line)?;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn reads_length_and_chunked_bodies() {
        let mut c = Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello".to_vec());
        let h = read_head(&mut c).expect("head");
        assert_eq!((h.status, h.length, h.chunked), (200, Some(5), false));
        let raw = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut c = Cursor::new(raw.to_vec());
        let h = read_head(&mut c).expect("head");
        assert_eq!((h.status, h.length, h.chunked, h.close), (503, None, true, true));
        let mut body = Vec::new();
        read_chunked(&mut c, &mut body).expect("chunks");
        assert_eq!(body, b"abcde");
        assert!(read_head(&mut Cursor::new(b"garbage\r\n\r\n".to_vec())).is_err());
    }

    #[test]
    fn builds_the_request_once() {
        let r = Request { path: "/q?x=1".into(), headers: vec![("A".into(), "b".into())], body: Some(b"{}".to_vec()) };
        let c = Conn::new("http://127.0.0.1:9/x", &r, Duration::from_secs(1)).expect("conn");
        assert_eq!(c.addr, "127.0.0.1:9");
        assert_eq!(
            c.request,
            b"POST /q?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nA: b\r\nContent-Length: 2\r\n\r\n{}".to_vec()
        );
        assert!(Conn::new("https://x", &r, Duration::from_secs(1)).is_err());
    }
}
