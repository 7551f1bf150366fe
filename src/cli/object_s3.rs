//! `s3://bucket/prefix` for `export-parquet`, through the `object_store`
//! crate's S3 client (any S3-compatible server). Configuration comes from
//! the usual variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_DEFAULT_REGION`, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`) for a
//! server other than AWS (`http://` endpoints are allowed).

use strata_sql::object_store::aws::AmazonS3Builder;
use strata_sql::object_store::path::Path as ObjectPath;
use strata_sql::object_store::{self, ObjectStore, ObjectStoreExt, PutPayload};

pub struct S3Dest {
    store: Box<dyn ObjectStore>,
    prefix: String,
    rt: tokio::runtime::Runtime,
}

impl S3Dest {
    /// `rest` is `bucket[/prefix]`.
    pub fn new(rest: &str) -> Result<S3Dest, String> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("s3:// needs a bucket: s3://bucket/prefix".into());
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Ok(ep) = std::env::var("AWS_ENDPOINT_URL") {
            b = b.with_allow_http(ep.starts_with("http://")).with_endpoint(ep);
        } else if std::env::var("AWS_ENDPOINT").is_ok_and(|ep| ep.starts_with("http://")) {
            b = b.with_allow_http(true);
        }
        let store = b.build().map_err(|e| format!("s3://{rest}: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the S3 client: {e}"))?;
        Ok(S3Dest { store: Box::new(store), prefix: prefix.trim_matches('/').to_string(), rt })
    }

    fn key(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        let key = self.key(rel);
        self.rt.block_on(async {
            match self.store.get(&key).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())).map_err(|e| format!("reading {key}: {e}")),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(format!("reading {key}: {e}")),
            }
        })
    }

    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), String> {
        let key = self.key(rel);
        self.rt
            .block_on(self.store.put(&key, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| format!("writing {key}: {e}"))
    }
}
