//! HTTPS end to end (`serve --tls-cert --tls-key`), set up the way the
//! README's "Use with Grafana" section does it: a private CA signs a
//! certificate for the Netdata Cloud host name (and 127.0.0.1, which the
//! test connects to), a client that trusts the CA talks to strata, and
//! one that does not is refused.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::json;

use crate::harness::{describe, run_cli, Resp, Server, TempDir};

struct Pki {
    ca_der: Vec<u8>,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn make_pki(dir: &std::path::Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("server key");
    let leaf = CertificateParams::new(vec!["app.netdata.cloud".to_string(), "127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("server certificate");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert, leaf.pem()).expect("writing the certificate");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("writing the key");
    Pki { ca_der: ca_cert.der().to_vec(), cert, key }
}

fn client(roots: Option<&[u8]>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if let Some(der) = roots {
        tls = tls.root_certs(RootCerts::Specific(Arc::new(vec![Certificate::from_der(der).to_owned()])));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .tls_config(tls.build())
        .build()
        .into()
}

#[test]
fn tls_serves_https_to_a_client_that_trusts_the_private_ca() {
    let certs = TempDir::new("tls-certs");
    let pki = make_pki(&certs.path);
    let flags = ["--tls-cert", pki.cert.to_str().expect("utf-8"), "--tls-key", pki.key.to_str().expect("utf-8")];
    let s = Server::start_with(TempDir::new("tls"), None, &flags);
    assert!(s.base.starts_with("https://127.0.0.1:"), "listening on {}", s.base);
    let bearer = format!("Bearer {}", s.token);

    let trusted = client(Some(&pki.ca_der));
    let me = trusted.get(s.url("/api/v2/accounts/me")).header("Authorization", &bearer).call().expect("HTTPS request");
    let me = Resp::from_http(me).expect("body");
    assert_eq!(me.status, 200, "{}", me.snippet());
    assert!(me.json()["id"].is_string());
    let spaces =
        Resp::from_http(trusted.get(s.url("/api/v2/spaces")).header("Authorization", &bearer).call().expect("spaces"))
            .expect("body");
    let space = spaces.json()[0]["id"].as_str().expect("space id").to_string();
    let body = json!({"scope": {"contexts": ["*"]}, "window": {"after": -60, "before": 0, "points": 1}});
    let data = trusted
        .post(s.url(&format!("/api/v3/spaces/{space}/rooms/all-nodes/data")))
        .header("Authorization", &bearer)
        .header("Content-Type", "application/json")
        .send(serde_json::to_vec(&body).expect("json").as_slice())
        .expect("HTTPS POST");
    assert_eq!(Resp::from_http(data).expect("body").status, 200);

    // Without the CA the handshake fails; plain HTTP gets no HTTP answer.
    let untrusted = client(None).get(s.url("/api/v2/accounts/me")).header("Authorization", &bearer).call();
    assert!(untrusted.is_err(), "a client that does not trust the CA got an answer");
    let plain_url = s.base.replacen("https://", "http://", 1) + "/health";
    let plain = crate::harness::agent().get(&plain_url).call();
    assert!(plain.as_ref().map_or(true, |r| r.status().as_u16() >= 400), "plain HTTP on the TLS port: {plain:?}");
    // The server still serves TLS after those failed handshakes.
    let again = trusted.get(s.url("/health")).call().expect("HTTPS after bad handshakes");
    assert_eq!(again.status().as_u16(), 200);
}

#[test]
fn tls_bad_certificate_files_stop_the_start_with_a_clear_error() {
    let dir = TempDir::new("tls-bad");
    let junk = dir.path.join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let data = dir.path.join("data");
    for (cert, key, needle) in
        [(dir.path.join("missing.pem"), junk.clone(), "missing.pem"), (junk.clone(), junk.clone(), "junk.pem")]
    {
        let o = run_cli(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().expect("utf-8"),
                "--no-demo",
                "--no-collector",
                "--tls-cert",
                cert.to_str().expect("utf-8"),
                "--tls-key",
                key.to_str().expect("utf-8"),
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(needle), "the error names {needle}: {}", describe(&o));
    }
    let o = run_cli(&["serve", "--tls-cert", junk.to_str().expect("utf-8")], None);
    assert_eq!(o.status.code(), Some(2), "--tls-cert without --tls-key is bad usage: {}", describe(&o));
}
