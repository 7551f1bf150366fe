//! Bearer-token authentication. 401 means "who are you" (no, malformed or
//! unknown token); 403 means "you may not" (see the token issue for scopes).
//! The first start on an empty data dir creates an admin token, writes it
//! to `<data-dir>/admin.token` (0600) and returns it once for printing.

pub mod token;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A token as stored: never the plaintext.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    pub created_at: i64,
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub struct TokenStore {
    records: Vec<(TokenRecord, [u8; 32])>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("token file {path} is not valid: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AuthSetupError + 'a {
    move |source| AuthSetupError::Io { action, path: path.to_path_buf(), source }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename) with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AuthSetupError> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        let mut f = opts.open(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io("rename into", path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl TokenStore {
    /// Opens (or initialises) the token store of a data dir. Returns the
    /// plaintext admin token only when it was just created.
    pub fn open(data_dir: &Path, now: i64) -> Result<(TokenStore, Option<String>), AuthSetupError> {
        let dir = data_dir.join("tokens");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let file = dir.join("tokens.json");
        let mut records: Vec<TokenRecord> = match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| AuthSetupError::Corrupt { path: file.clone(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &file)(e)),
        };
        let admin_path = data_dir.join("admin.token");
        let mut created = None;
        if !records.iter().any(|r| r.id == "admin") {
            let token = match fs::read_to_string(&admin_path) {
                Ok(t) => t.trim().to_string(),
                Err(_) => {
                    let t = token::generate().map_err(|e| AuthSetupError::Random(e.to_string()))?;
                    write_atomic(&admin_path, format!("{t}\n").as_bytes(), 0o600)?;
                    created = Some(t.clone());
                    t
                }
            };
            records.push(TokenRecord {
                id: "admin".into(),
                name: "admin".into(),
                scopes: vec!["scope:all".into()],
                sha256: hex(&token::hash(&token)),
                created_at: now,
            });
            let json = serde_json::to_vec_pretty(&records)
                .map_err(|source| AuthSetupError::Corrupt { path: file.clone(), source })?;
            write_atomic(&file, &json, 0o600)?;
        }
        let records = records.into_iter().filter_map(|r| unhex(&r.sha256).map(|h| (r, h))).collect();
        Ok((TokenStore { records }, created))
    }

    /// Authenticates an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let Some(h) = header else {
            return Err(ApiError::Unauthorized("missing bearer token".into()));
        };
        let Some(tok) = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(str::trim) else {
            return Err(ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()));
        };
        if !token::well_formed(tok) {
            return Err(ApiError::Unauthorized("malformed token (expected strata_ followed by 49 characters)".into()));
        }
        let h = token::hash(tok);
        // Compare against every record so timing does not reveal which matched.
        let mut found = None;
        for (r, stored) in &self.records {
            if token::constant_time_eq(stored, &h) {
                found = Some(r);
            }
        }
        let r = found.ok_or_else(|| ApiError::Unauthorized("unknown token".into()))?;
        Ok(Principal { token_id: r.id.clone(), name: r.name.clone(), scopes: r.scopes.clone() })
    }
}

/// Middleware: every `/api` route requires a valid bearer token.
pub async fn require_token(
    State(tokens): State<Arc<TokenStore>>,
    mut req: Request,
    next: Next,
) -> Result<Response, Response> {
    use axum::response::IntoResponse;
    let header = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match tokens.authenticate(header) {
        Ok(p) => {
            req.extensions_mut().insert(p);
            Ok(next.run(req).await)
        }
        Err(e) => {
            let cloud = req.uri().path().contains("/spaces") || req.uri().path().ends_with("/accounts/me");
            Err(if cloud { e.cloud().into_response() } else { e.into_response() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("strata-auth-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn first_start_creates_admin_token_once() {
        let d = tmpdir("first");
        fs::create_dir_all(&d).expect("dir");
        let (store, created) = TokenStore::open(&d, 1).expect("open");
        let tok = created.expect("created on first start");
        assert_eq!(fs::read_to_string(d.join("admin.token")).expect("file").trim(), tok);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.join("admin.token")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!fs::read_to_string(d.join("tokens/tokens.json")).expect("json").contains(&tok));
        let p = store.authenticate(Some(&format!("Bearer {tok}"))).expect("auth");
        assert_eq!(p.token_id, "admin");
        let (again, created2) = TokenStore::open(&d, 2).expect("reopen");
        assert!(created2.is_none());
        assert!(again.authenticate(Some(&format!("Bearer {tok}"))).is_ok());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_headers_are_unauthorized() {
        let d = tmpdir("bad");
        fs::create_dir_all(&d).expect("dir");
        let (store, _) = TokenStore::open(&d, 1).expect("open");
        let other = token::generate().expect("rng");
        for h in [None, Some("Basic abc"), Some("Bearer nope"), Some(&*format!("Bearer {other}"))] {
            let e = store.authenticate(h).expect_err("must fail");
            assert_eq!(e.status(), axum::http::StatusCode::UNAUTHORIZED);
        }
        let _ = fs::remove_dir_all(&d);
    }
}
