//! The harness's HTTP client: plain blocking ureq, one agent per thread
//! (keep-alive), status codes as values, bodies up to 1 GiB.

use std::time::{Duration, Instant};

pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into()
}

/// Status, body and wall time of one request (`body` None = GET).
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(u16, Vec<u8>, Duration), String> {
    let start = Instant::now();
    let resp = match body {
        Some(b) => {
            let mut r = agent.post(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(b)
        }
        None => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
    };
    let mut resp = resp.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .map_err(|e| format!("{url}: reading the answer: {e}"))?;
    Ok((status, bytes, start.elapsed()))
}

/// Like [`send`], failing on a non-2xx status (with the body's start).
pub fn send_ok(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(Vec<u8>, Duration), String> {
    let (status, bytes, took) = send(agent, url, headers, body)?;
    if !(200..300).contains(&status) {
        let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
        return Err(format!("{url} answered {status}: {text}"));
    }
    Ok((bytes, took))
}

/// `application/x-www-form-urlencoded` escaping for PromQL in a URL.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
