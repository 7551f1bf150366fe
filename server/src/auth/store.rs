//! The token store: records persisted in `<data-dir>/tokens/tokens.json`
//! (written atomically: temp file, fsync, rename, fsync dir). Only the
//! SHA-256 of a token is kept; the plaintext exists once, in the response
//! that creates it (and, for the first admin token, in `admin.token`).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use strata_engine::index::SimplePattern;

use super::scopes::{Resource, Scopes, Verb};
use super::token;
use crate::error::ApiError;

/// Per-token request rate (token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: 50.0, burst: 100 }
    }
}

impl std::str::FromStr for RateLimit {
    type Err = String;
    /// `PER_SECOND:BURST`, e.g. `50:100`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not PER_SECOND:BURST (e.g. 50:100)");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let per_second: f64 = a.trim().parse().map_err(|_| bad())?;
        let burst: u32 = b.trim().parse().map_err(|_| bad())?;
        if per_second.is_nan() || per_second <= 0.0 || burst == 0 {
            return Err(bad());
        }
        Ok(RateLimit { per_second, burst })
    }
}

/// A token as stored: never the plaintext.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// Masked prefix for listings, e.g. `strata_ab12…`.
    #[serde(default)]
    pub prefix: String,
    pub created_at: i64,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub last_used_at: Option<i64>,
    #[serde(default)]
    pub last_used_ip: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<i64>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Most new series this token may create per clock hour (`None`: the
    /// server's `--max-new-series-per-hour`, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_series_per_hour: Option<u64>,
    /// The first-start admin token: may do everything, no allowlist.
    #[serde(default)]
    pub admin: bool,
}

/// Who a request authenticated as: a handle, built once per token, so the
/// copies each request makes (its extension, each handler's) are one
/// reference count, not copies of the scopes and the allowlist pattern.
#[derive(Debug, Clone)]
pub struct Principal(Arc<Identity>);

impl std::ops::Deref for Principal {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// What a [`Principal`] holds.
#[derive(Debug)]
pub struct Identity {
    pub token_id: String,
    pub name: String,
    pub scopes: Scopes,
    pub nodes: Vec<String>,
    pub allow: Option<SimplePattern>,
    pub admin: bool,
    pub expires_at: Option<i64>,
    /// The token's own limit; `None` uses the server default.
    pub rate_limit: Option<RateLimit>,
    /// The token's own new-series allowance per hour; `None` uses the server default.
    pub new_series_per_hour: Option<u64>,
}

impl Principal {
    pub fn allows(&self, r: Resource, v: Verb) -> bool {
        self.admin || self.scopes.allows(r, v)
    }

    /// The unauthenticated reader of `--anonymous-read`.
    pub fn anonymous() -> Principal {
        Principal::from(Identity {
            token_id: "anonymous".into(),
            name: "anonymous".into(),
            scopes: Scopes::parse(&["strata:data:read", "strata:metadata:read"]).unwrap_or_default(),
            nodes: Vec::new(),
            allow: None,
            admin: false,
            expires_at: None,
            rate_limit: None,
            new_series_per_hour: None,
        })
    }
}

impl From<Identity> for Principal {
    fn from(identity: Identity) -> Self {
        Principal(Arc::new(identity))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("token file {path} is not valid: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("token store lock poisoned")]
    Poisoned,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// A failed save as the API answers it: 507 when the disk is full, else a
/// 500; `what` says what it means for the request.
pub(crate) fn not_saved(e: StoreError, what: &str) -> ApiError {
    match &e {
        StoreError::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded) =>
        {
            ApiError::StorageFull(format!("{what}: {e}"))
        }
        _ => ApiError::Internal(format!("{what}: {e}")),
    }
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

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir) with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
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

struct Entry {
    record: TokenRecord,
    hash: [u8; 32],
    /// Built from `record` once: only `last_used_*` and `revoked_at`
    /// change later, and a principal holds neither.
    principal: Principal,
}

/// A stored token's allowlist (`None`: every node). A listed allowlist
/// that names nothing (`[""]`, stored before creation refused it) matches
/// no node: an empty pattern would match every one.
pub(super) fn allowlist_of(nodes: &[String]) -> Option<SimplePattern> {
    (!nodes.is_empty()).then(|| {
        SimplePattern::parse_list(nodes).ok().filter(|p| p.words() > 0).unwrap_or_else(SimplePattern::match_none)
    })
}

impl Entry {
    fn new(record: TokenRecord) -> Option<Entry> {
        let hash = unhex(&record.sha256)?;
        let scopes = Scopes::parse(&record.scopes).ok()?;
        let allow = allowlist_of(&record.nodes);
        Some(Entry::with(record, hash, scopes, allow))
    }

    fn with(record: TokenRecord, hash: [u8; 32], scopes: Scopes, allow: Option<SimplePattern>) -> Entry {
        let r = &record;
        let principal = Principal::from(Identity {
            token_id: r.id.clone(),
            name: r.name.clone(),
            scopes,
            nodes: r.nodes.clone(),
            allow,
            admin: r.admin,
            expires_at: r.expires_at,
            rate_limit: r.rate_limit,
            new_series_per_hour: r.new_series_per_hour,
        });
        Entry { record, hash, principal }
    }

    fn principal(&self) -> Principal {
        self.principal.clone()
    }
}

/// The records in memory, indexed by token hash.
struct Entries {
    list: Vec<Entry>,
    by_hash: HashMap<[u8; 32], usize>,
    /// Records this build cannot use (e.g. a scope it does not know): never
    /// authenticate, but are written back unchanged rather than dropped.
    unreadable: Vec<TokenRecord>,
}

impl Entries {
    fn new(records: Vec<TokenRecord>) -> Entries {
        let mut entries = Entries { list: Vec::new(), by_hash: HashMap::new(), unreadable: Vec::new() };
        for r in records {
            match Entry::new(r.clone()) {
                Some(e) => entries.push(e),
                None => {
                    tracing::warn!(id = %r.id, "token record cannot be used by this version; kept as is");
                    entries.unreadable.push(r);
                }
            }
        }
        entries
    }

    fn push(&mut self, e: Entry) {
        self.by_hash.insert(e.hash, self.list.len());
        self.list.push(e);
    }

    /// Takes back the entry with token id `id` (the newest, as a failed
    /// create leaves it).
    fn remove(&mut self, id: &str) {
        if let Some(i) = self.list.iter().rposition(|e| e.record.id == id) {
            debug_assert_eq!(i + 1, self.list.len(), "only the newest entry is taken back");
            self.list.remove(i);
            self.by_hash = self.list.iter().enumerate().map(|(i, e)| (e.hash, i)).collect();
        }
    }

    fn records(&self) -> impl Iterator<Item = &TokenRecord> {
        self.list.iter().map(|e| &e.record).chain(&self.unreadable)
    }

    /// Entries are never removed but for the newest one, taken back by a
    /// failed create before its caller (or anyone) saw its index: an index
    /// found stays valid across lock releases.
    fn find(&self, hash: &[u8; 32]) -> Option<usize> {
        // Looking up by SHA-256 leaks, by timing, at most how a digest of the
        // caller's own guess compares with a stored digest, which gives no
        // way to a token; the constant-time check confirms the match.
        self.by_hash.get(hash).copied().filter(|&i| token::constant_time_eq(&self.list[i].hash, hash))
    }
}

pub struct TokenStore {
    path: PathBuf,
    entries: RwLock<Entries>,
    /// `last_used_*` changed since the file was last written. Use is recorded
    /// in memory on every request and written by [`TokenStore::flush_usage`]
    /// (periodically and at shutdown), not per request: an fsync per API
    /// call would cost more than the call.
    usage_dirty: AtomicBool,
    /// Held while the file is written: concurrent writers (a create and the
    /// usage flush) would otherwise share the temp file, and an older
    /// snapshot could be renamed over a newer one.
    writing: Mutex<()>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore").field("path", &self.path).finish()
    }
}

/// What a new token should be.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    #[serde(default)]
    pub seconds_to_live: Option<i64>,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub new_series_per_hour: Option<u64>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

impl TokenStore {
    /// Opens (or initialises) the store of a data dir. The first start
    /// creates the admin token, writes it to `admin.token` (0600) and
    /// returns its plaintext once.
    pub fn open(data_dir: &Path, now: i64) -> Result<(TokenStore, Option<String>), StoreError> {
        let dir = data_dir.join("tokens");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join("tokens.json");
        let mut records: Vec<TokenRecord> = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path: path.clone(), source })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let mut created = None;
        if !records.iter().any(|r| r.admin) {
            let admin_path = data_dir.join("admin.token");
            let token = match fs::read_to_string(&admin_path) {
                Ok(t) => t.trim().to_string(),
                Err(_) => {
                    let t = token::generate().map_err(|e| StoreError::Random(e.to_string()))?;
                    write_atomic(&admin_path, format!("{t}\n").as_bytes(), 0o600)?;
                    created = Some(t.clone());
                    t
                }
            };
            records.push(TokenRecord {
                id: "admin".into(),
                name: "admin".into(),
                scopes: vec!["scope:all".into()],
                nodes: Vec::new(),
                sha256: hex(&token::hash(&token)),
                prefix: token::masked(&token),
                created_at: now,
                created_by: None,
                expires_at: None,
                last_used_at: None,
                last_used_ip: None,
                revoked_at: None,
                rate_limit: None,
                new_series_per_hour: None,
                admin: true,
            });
        }
        let store = TokenStore {
            path,
            entries: RwLock::new(Entries::new(records)),
            usage_dirty: AtomicBool::new(false),
            writing: Mutex::new(()),
        };
        if created.is_some() {
            store.persist()?;
        }
        Ok((store, created))
    }

    /// Writes the file if a token was used since the last write; returns
    /// whether it wrote. On failure the usage stays pending for the next call.
    pub fn flush_usage(&self) -> Result<bool, StoreError> {
        if !self.usage_dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        self.persist().inspect_err(|_| self.usage_dirty.store(true, Ordering::Release))?;
        Ok(true)
    }

    fn persist(&self) -> Result<(), StoreError> {
        let _writing = self.writing.lock().map_err(|_| StoreError::Poisoned)?;
        self.write_file()
    }

    /// Writes the token file; the caller holds `writing`.
    fn write_file(&self) -> Result<(), StoreError> {
        let json = {
            let entries = self.entries.read().map_err(|_| StoreError::Poisoned)?;
            let records: Vec<&TokenRecord> = entries.records().collect();
            serde_json::to_vec_pretty(&records)
                .map_err(|source| StoreError::Corrupt { path: self.path.clone(), source })?
        };
        write_atomic(&self.path, &json, 0o600)
    }

    /// Authenticates an `Authorization` header value; records last use.
    pub fn authenticate(&self, header: Option<&str>, ip: Option<&str>, now: i64) -> Result<Principal, ApiError> {
        let tok = parse_authorization(header)?;
        let h = token::hash(tok);
        let lock_err = || ApiError::Internal("token store lock".into());
        let (i, principal) = {
            let entries = self.entries.read().map_err(|_| lock_err())?;
            let i = entries.find(&h).ok_or_else(|| ApiError::Unauthorized("unknown token".into()))?;
            let e = &entries.list[i];
            if e.record.revoked_at.is_some() {
                return Err(ApiError::Unauthorized("token was revoked".into()));
            }
            if e.record.expires_at.is_some_and(|x| now >= x) {
                return Err(ApiError::Unauthorized("token has expired".into()));
            }
            if e.record.last_used_at == Some(now) && e.record.last_used_ip.as_deref() == ip {
                return Ok(e.principal());
            }
            (i, e.principal())
        };
        // A token's use changes at most once a second per address: only then
        // does a request take the write lock.
        let mut entries = self.entries.write().map_err(|_| lock_err())?;
        let r = &mut entries.list[i].record;
        r.last_used_at = Some(now);
        r.last_used_ip = ip.map(str::to_string);
        self.usage_dirty.store(true, Ordering::Release);
        Ok(principal)
    }

    /// Creates a token on behalf of `creator`; returns the record and the
    /// plaintext (shown this once). Never more power than the creator.
    pub fn create(&self, creator: &Principal, req: NewToken, now: i64) -> Result<(TokenRecord, String), ApiError> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(bad("'name' must be 1 to 128 printable characters"));
        }
        let scopes = Scopes::parse(&req.scopes).map_err(|e| bad(e.to_string()))?;
        if !creator.admin && !scopes.within(&creator.scopes) {
            return Err(ApiError::Forbidden("a token cannot create a token with more power than itself".into()));
        }
        if req.nodes.len() > 1000 {
            return Err(bad("'nodes' may list at most 1000 node ids or patterns"));
        }
        if req.nodes.iter().any(|n| n.trim().is_empty()) {
            return Err(bad(
                "'nodes' has an empty entry: list node ids or patterns, or leave 'nodes' out for every node",
            ));
        }
        let allow = if req.nodes.is_empty() {
            None
        } else {
            let p = SimplePattern::parse_list(&req.nodes).map_err(|e| bad(format!("'nodes': {e}")))?;
            if p.words() == 0 {
                return Err(bad("'nodes' names no node: list node ids or patterns"));
            }
            Some(p)
        };
        if let Some(parent) = &creator.allow {
            // Narrower or equal: the child names exact nodes only (no glob,
            // no negation), each one the creator may see. Checked on the
            // parsed words: an entry `web-1|db-9` is two nodes, and the
            // creator's `web-*` matches the entry's whole text.
            let words = allow.as_ref().and_then(SimplePattern::exact_words);
            if !words.is_some_and(|w| w.iter().all(|n| parent.matches(n))) {
                return Err(ApiError::Forbidden(
                    "a token with a node allowlist can only create tokens for nodes on it".into(),
                ));
            }
        }
        let ttl = match (req.expires_in_days, req.seconds_to_live) {
            (Some(_), Some(_)) => return Err(bad("give 'expires_in_days' or 'seconds_to_live', not both")),
            (Some(d), None) if !(0..=3650).contains(&d) => {
                return Err(bad("'expires_in_days' must be 0..3650 (0 = never)"))
            }
            (Some(0), None) | (None, None) => None,
            (Some(d), None) => Some(d * 86_400),
            (None, Some(s)) if s <= 0 || s > 3650 * 86_400 => {
                return Err(bad("'seconds_to_live' must be 1..=315360000"))
            }
            (None, Some(s)) => Some(s),
        };
        let mut expires_at = ttl.map(|t| now + t);
        if let Some(cx) = creator.expires_at {
            expires_at = Some(expires_at.map_or(cx, |x| x.min(cx)));
        }
        if let Some(rl) = req.rate_limit {
            if !(0.0..=100_000.0).contains(&rl.per_second)
                || rl.per_second == 0.0
                || rl.burst == 0
                || rl.burst > 1_000_000
            {
                return Err(bad("'rate_limit' needs per_second in (0, 100000] and burst in 1..=1000000"));
            }
        }
        let plaintext = token::generate().map_err(|e| ApiError::Internal(format!("random: {e}")))?;
        let id = format!("tok_{}", &hex(&token::hash(&plaintext))[..16]);
        let record = TokenRecord {
            id,
            name: name.to_string(),
            scopes: scopes.names.clone(),
            nodes: req.nodes,
            sha256: hex(&token::hash(&plaintext)),
            prefix: token::masked(&plaintext),
            created_at: now,
            created_by: Some(creator.token_id.clone()),
            expires_at,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            rate_limit: req.rate_limit,
            new_series_per_hour: req.new_series_per_hour,
            admin: false,
        };
        let entry = Entry::with(record.clone(), token::hash(&plaintext), scopes, allow);
        let lock_err = || ApiError::Internal("token store lock".into());
        // Held from the insert to the saved file: no other write saves this
        // token before it is known to be saved, or after it is taken back.
        let _writing = self.writing.lock().map_err(|_| lock_err())?;
        self.entries.write().map_err(|_| lock_err())?.push(entry);
        if let Err(e) = self.write_file() {
            // Not saved: take it back, so what the API lists is what a
            // restart finds (the caller never saw the plaintext).
            self.entries.write().map_err(|_| lock_err())?.remove(&record.id);
            return Err(not_saved(e, "the token was not created"));
        }
        Ok((record, plaintext))
    }

    pub fn list(&self) -> Vec<TokenRecord> {
        self.entries.read().map(|e| e.records().cloned().collect()).unwrap_or_default()
    }

    pub fn get(&self, id: &str) -> Option<TokenRecord> {
        self.entries.read().ok()?.records().find(|r| r.id == id).cloned()
    }

    /// Revokes a token (idempotent). Returns the record, or None if unknown.
    pub fn revoke(&self, id: &str, now: i64) -> Result<Option<TokenRecord>, ApiError> {
        Ok(self.revoke_then(id, now, || ())?.map(|(rec, ())| rec))
    }

    /// [`TokenStore::revoke`], running `end_work` (ending the token's
    /// running queries and streams) once the revocation holds in memory and
    /// before the token file is written: a running query stops within its
    /// next check, not after an fsync that a busy disk can stretch.
    pub fn revoke_then<R>(
        &self,
        id: &str,
        now: i64,
        end_work: impl FnOnce() -> R,
    ) -> Result<Option<(TokenRecord, R)>, ApiError> {
        let rec = {
            let mut entries = self.entries.write().map_err(|_| ApiError::Internal("token store lock".into()))?;
            let Some(e) = entries.list.iter_mut().find(|e| e.record.id == id) else { return Ok(None) };
            if e.record.admin {
                return Err(ApiError::Forbidden("the admin token cannot be revoked through the API".into()));
            }
            e.record.revoked_at.get_or_insert(now);
            e.record.clone()
        };
        let ended = end_work();
        self.persist().map_err(|e| {
            not_saved(
                e,
                "the token is revoked and its running work ended, but only until a restart: the token file was \
                 not saved; retry the revocation",
            )
        })?;
        Ok(Some((rec, ended)))
    }
}

/// Parses `Authorization: Bearer <token>`; 401 for anything else.
pub fn parse_authorization(header: Option<&str>) -> Result<&str, ApiError> {
    let Some(h) = header else {
        return Err(ApiError::Unauthorized("missing bearer token".into()));
    };
    let (scheme, rest) = h
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()));
    }
    let tok = rest.trim();
    if !token::well_formed(tok) {
        return Err(ApiError::Unauthorized("malformed token (expected strata_ followed by 49 characters)".into()));
    }
    Ok(tok)
}
