//! Where `export-parquet` writes: a local directory (temp file, fsync,
//! rename: a reader never sees a partial file) or, in builds with
//! `--features sql`, an S3-compatible object store through the
//! `object_store` crate (one PUT per object, atomic by the protocol).

use std::path::{Path, PathBuf};

pub enum Dest {
    Dir(PathBuf),
    #[cfg(feature = "sql")]
    S3(super::object_s3::S3Dest),
}

impl Dest {
    pub fn parse(to: &str) -> Result<Dest, String> {
        if let Some(rest) = to.strip_prefix("s3://") {
            #[cfg(feature = "sql")]
            return super::object_s3::S3Dest::new(rest).map(Dest::S3);
            #[cfg(not(feature = "sql"))]
            return Err(format!(
                "s3://{rest}: this strata was built without object storage; build it with --features sql"
            ));
        }
        if to.contains("://") {
            return Err(format!("{to}: give a directory or s3://bucket/prefix"));
        }
        std::fs::create_dir_all(to).map_err(|e| format!("creating {to}: {e}"))?;
        Ok(Dest::Dir(PathBuf::from(to)))
    }

    /// The object at `rel`, if it exists.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Dest::Dir(d) => match std::fs::read(d.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("reading {}: {e}", d.join(rel).display())),
            },
            #[cfg(feature = "sql")]
            Dest::S3(s) => s.get(rel),
        }
    }

    /// Writes `rel` whole.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), String> {
        match self {
            Dest::Dir(d) => put_file(&d.join(rel), &bytes),
            #[cfg(feature = "sql")]
            Dest::S3(s) => s.put(rel, bytes),
        }
    }
}

fn put_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let err = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    let dir = path.parent().ok_or_else(|| format!("{} has no parent", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| err("creating the directory of", e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| err("creating", e))?;
    f.write_all(bytes).map_err(|e| err("writing", e))?;
    f.sync_all().map_err(|e| err("syncing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("renaming into", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
