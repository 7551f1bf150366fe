//! `strata token create|list|revoke`: through the API while the server runs
//! (found at --url), directly on the data dir while it is stopped.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use strata_server::auth::{now_secs, NewToken, TokenStore};

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    /// Server URL, used when a server answers there.
    #[arg(long, global = true, env = "STRATA_URL", default_value = "http://127.0.0.1:19999")]
    pub url: String,
    /// Bearer token for the API; defaults to the admin token in --data-dir.
    #[arg(long, global = true, env = "STRATA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, global = true, env = "STRATA_DATA_DIR", default_value = "./strata-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it once.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. strata:data:read,scope:grafana-plugin or a preset (viewer, editor, admin, metrics-publisher).
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Comma-separated node allowlist (ids or patterns).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// Days until it expires (0 = never).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List tokens (masked).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn server_up(url: &str) -> bool {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    a.get(&format!("{}/health", url.trim_end_matches('/'))).call().is_ok_and(|r| r.status().is_success())
}

fn admin_token(a: &TokenArgs) -> Result<String, String> {
    if let Some(t) = &a.token {
        return Ok(t.clone());
    }
    let p = a.data_dir.join("admin.token");
    std::fs::read_to_string(&p)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("no --token and cannot read {}: {e}", p.display()))
}

fn api(a: &TokenArgs, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let url = format!("{}{path}", a.url.trim_end_matches('/'));
    let auth = format!("Bearer {}", admin_token(a)?);
    let agent = agent();
    let resp = match (method, body) {
        ("POST", Some(b)) => agent.post(&url).header("Authorization", &auth).send_json(b),
        ("DELETE", _) => agent.delete(&url).header("Authorization", &auth).call(),
        _ => agent.get(&url).header("Authorization", &auth).call(),
    };
    let mut resp = resp.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status();
    let text = resp.body_mut().read_to_string().map_err(|e| format!("reading response: {e}"))?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        return Err(format!("server answered {status}: {v}"));
    }
    Ok(v)
}

fn print(v: &Value) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(v).map_err(|e| e.to_string())?);
    Ok(())
}

pub fn run(a: TokenArgs) -> Result<(), String> {
    if server_up(&a.url) {
        let v = match &a.command {
            TokenCommand::Create { name, scopes, nodes, expires_in_days } => api(
                &a,
                "POST",
                "/api/v1/tokens",
                Some(json!({"name": name, "scopes": scopes, "nodes": nodes, "expires_in_days": expires_in_days})),
            )?,
            TokenCommand::List => api(&a, "GET", "/api/v1/tokens", None)?,
            TokenCommand::Revoke { id } => api(&a, "DELETE", &format!("/api/v1/tokens/{id}"), None)?,
        };
        return print(&v);
    }
    // No server answered: work on the data dir as its administrator, holding
    // the same lock a server holds, so a server we could not reach (wrong
    // --url) is never edited underneath.
    std::fs::create_dir_all(&a.data_dir).map_err(|e| format!("creating {}: {e}", a.data_dir.display()))?;
    let lock_path = a.data_dir.join("LOCK");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening {}: {e}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        return Err(format!(
            "a strata server is running on {} but did not answer at {}; pass its address with --url",
            a.data_dir.display(),
            a.url
        ));
    }
    let (store, _) = TokenStore::open(&a.data_dir, now_secs()).map_err(|e| e.to_string())?;
    let admin = store
        .authenticate(Some(&format!("Bearer {}", admin_token(&a)?)), None, now_secs())
        .map_err(|e| format!("the admin token in {} is not valid: {e}", a.data_dir.display()))?;
    let v = match a.command {
        TokenCommand::Create { name, scopes, nodes, expires_in_days } => {
            let req = NewToken { name, scopes, nodes, expires_in_days, ..Default::default() };
            let (rec, plain) = store.create(&admin, req, now_secs()).map_err(|e| e.to_string())?;
            json!({"id": rec.id, "token": plain, "name": rec.name, "scopes": rec.scopes, "nodes": rec.nodes, "expires_at": rec.expires_at, "created_at": rec.created_at})
        }
        TokenCommand::List => {
            json!({"tokens": store.list().iter().map(|r| json!({"id": r.id, "name": r.name, "token": r.prefix, "scopes": r.scopes, "nodes": r.nodes, "expires_at": r.expires_at, "revoked_at": r.revoked_at})).collect::<Vec<_>>()})
        }
        TokenCommand::Revoke { id } => {
            let rec =
                store.revoke(&id, now_secs()).map_err(|e| e.to_string())?.ok_or(format!("no token with id '{id}'"))?;
            json!({"id": rec.id, "revoked_at": rec.revoked_at})
        }
    };
    print(&v)
}
