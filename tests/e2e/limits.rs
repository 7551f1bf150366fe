//! Connection-level limits through a raw socket: slow-loris header
//! dribbling is cut off, slow bodies get 408, and both within their limits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Server, TempDir};

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Reads until EOF or `limit`; returns what arrived and how long it took.
fn read_until_close(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    (String::from_utf8_lossy(&buf).into_owned(), start.elapsed())
}

#[test]
fn slow_headers_are_cut_off_by_the_header_timeout() {
    let server = Server::start_with(TempDir::new("loris"), None, &["--header-timeout", "1s"]);
    let mut s = TcpStream::connect(addr(&server)).expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").expect("partial headers");
    let (_, took) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(took < Duration::from_secs(4), "connection held for {took:?}");
    // The server still serves others.
    let (status, body) = server.get("/health");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn slow_bodies_get_408_json() {
    let server = Server::start_with(TempDir::new("slowbody"), None, &["--body-timeout", "1s"]);
    let mut s = TcpStream::connect(addr(&server)).expect("connect");
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"series\"",
        server.token
    );
    s.write_all(head.as_bytes()).expect("headers and a bit of body");
    let (text, took) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 408"), "got: {text}");
    assert!(text.contains("\"status\":408"), "JSON error body: {text}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}
