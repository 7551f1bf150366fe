//! `strata query`, `strata sql` and `strata ingest`: thin HTTP clients of a running server.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(long, env = "STRATA_URL", default_value = "http://127.0.0.1:19999")]
    pub url: String,
    /// Bearer token; defaults to the admin token in --data-dir.
    #[arg(long, env = "STRATA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where to find admin.token when --token is not given.
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "./strata-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Query body file (POST /api/v3/data), or - for stdin.
    pub body: String,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Answer format (`POST /api/v1/sql`'s `format`).
    #[arg(long, env = "STRATA_SQL_FORMAT", default_value = "csv", value_parser = ["csv", "json"])]
    pub format: String,
    /// The statement (`SELECT ...`), or - for stdin. Needs a server built with `--features sql`.
    pub query: String,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Body format: a JSON batch or an Arrow IPC stream (long schema, see
    /// the README). Default: arrow for files ending in .arrow or .arrows, else json.
    #[arg(long, env = "STRATA_FORMAT", value_enum)]
    pub format: Option<IngestFormat>,
    /// Ingest batch file, or - for stdin.
    pub file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IngestFormat {
    Json,
    Arrow,
}

impl IngestFormat {
    fn content_type(self) -> &'static str {
        match self {
            IngestFormat::Json => "application/json",
            IngestFormat::Arrow => strata_engine::ingest::arrow::CONTENT_TYPE,
        }
    }

    /// The format a file name implies.
    fn of_path(path: &str) -> IngestFormat {
        match std::path::Path::new(path).extension().and_then(|e| e.to_str()) {
            Some("arrow" | "arrows") => IngestFormat::Arrow,
            _ => IngestFormat::Json,
        }
    }
}

fn read_input(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("reading stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))
    }
}

fn token(c: &ClientArgs) -> Result<String, String> {
    if let Some(t) = &c.token {
        return Ok(t.clone());
    }
    let p = c.data_dir.join("admin.token");
    std::fs::read_to_string(&p)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("no --token given and cannot read {}: {e}", p.display()))
}

fn post(c: &ClientArgs, path: &str, content_type: &str, body: Vec<u8>) -> Result<(), String> {
    let url = format!("{}{path}", c.url.trim_end_matches('/'));
    let tok = token(c)?;
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {tok}"))
        .header("Content-Type", content_type)
        .send(&body[..])
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    print_body(&mut resp.body_mut().as_reader())?;
    if !status.is_success() {
        return Err(format!("server answered {status}"));
    }
    Ok(())
}

/// Copies an answer to stdout as it arrives (whatever its size: a SQL
/// answer may be up to the server's `--sql-max-bytes`), ending it with a
/// newline unless it ends with one (a CSV answer does: another would be
/// an empty record).
fn print_body(body: &mut impl std::io::Read) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    let mut last = b'\n';
    loop {
        let n = body.read(&mut buf).map_err(|e| format!("reading response: {e}"))?;
        if n == 0 {
            break;
        }
        last = buf[n - 1];
        out.write_all(&buf[..n]).map_err(|e| format!("writing the answer: {e}"))?;
    }
    if last != b'\n' {
        out.write_all(b"\n").map_err(|e| format!("writing the answer: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing the answer: {e}"))
}

pub fn query(a: QueryArgs) -> Result<(), String> {
    let body = read_input(&a.body)?;
    post(&a.client, "/api/v3/data", "application/json", body)
}

pub fn sql(a: SqlArgs) -> Result<(), String> {
    let query = match a.query.as_str() {
        "-" => String::from_utf8(read_input("-")?).map_err(|e| format!("stdin is not UTF-8: {e}"))?,
        q => q.to_string(),
    };
    let body = serde_json::to_vec(&serde_json::json!({"query": query, "format": a.format}))
        .map_err(|e| format!("encoding the request: {e}"))?;
    post(&a.client, "/api/v1/sql", "application/json", body)
}

pub fn ingest(a: IngestArgs) -> Result<(), String> {
    let body = read_input(&a.file)?;
    let format = a.format.unwrap_or_else(|| IngestFormat::of_path(&a.file));
    post(&a.client, "/api/v1/ingest", format.content_type(), body)
}
