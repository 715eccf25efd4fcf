//! Object storage for the Parquet output: `--output-dir s3://bucket/prefix` (and `gs://`,
//! `az://`/`abfs://`, `file://`) through the `object_store` crate, with the layout of a
//! local folder (see [`super::parquet`]).
//!
//! The Parquet sink writes each file locally, in a staging folder, exactly as it does for
//! a local output; when a file is closed it is uploaded under its final name (one PUT, or
//! a multipart upload above [`MULTIPART_BYTES`]: both become visible only once complete),
//! then the local copy is removed, and only then is the state that covers it saved: the
//! state object is itself one PUT, replaced whole. So a reader never sees half an object,
//! and the stored state never points past data that is not stored. A killed run leaves
//! at most an incomplete multipart upload, which object stores never list (a bucket
//! lifecycle rule that aborts incomplete uploads after a day reclaims the space).
//!
//! Credentials come from the usual places of each ecosystem, through `object_store`'s
//! `from_env` builders: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL` (an S3-compatible server), web identity (EKS IRSA),
//! ECS task roles and EC2 instance metadata; `GOOGLE_SERVICE_ACCOUNT*`/
//! `GOOGLE_APPLICATION_CREDENTIALS` and GCE metadata; `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY` or a client secret / managed identity.
//!
//! This module never calls Stripe and knows nothing about records.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

/// Files at least this big go up as multipart uploads (parts of this size).
pub const MULTIPART_BYTES: usize = 16 << 20;

/// Where the Parquet output goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A local folder (a plain path, or a `file://` URL).
    Local(PathBuf),
    /// A prefix in an object store.
    Remote(Arc<Remote>),
}

impl Destination {
    /// Parses `--output-dir`: a path, or a URL whose scheme names an object store.
    ///
    /// # Errors
    /// An unknown scheme, a URL without a bucket, or a store that cannot be set up from
    /// the environment (e.g. no region for S3): the message names the flag.
    pub fn parse(target: &Path) -> Result<Destination, String> {
        let Some(text) = target.to_str() else {
            return Ok(Destination::Local(target.to_owned()));
        };
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Destination::Local(target.to_owned()));
        };
        let bad = |why: String| format!("--output-dir {text}: {why}");
        let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match scheme {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("not a local path".to_owned()))?;
                return Ok(Destination::Local(path));
            }
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}://`; use a local path, file://, s3://, gs:// or az://"
                )));
            }
        };
        if url.host_str().unwrap_or_default().is_empty() {
            return Err(bad("the URL names no bucket or container".to_owned()));
        }
        let prefix = ObjectPath::from(url.path().trim_matches('/'));
        let base = text.trim_end_matches('/').to_owned();
        Ok(Destination::Remote(Arc::new(Remote {
            store,
            prefix,
            base,
        })))
    }

    /// The destination for people and for DuckDB (`s3://bucket/prefix`, or the path).
    pub fn display(&self) -> String {
        match self {
            Destination::Local(path) => path.display().to_string(),
            Destination::Remote(remote) => remote.base.clone(),
        }
    }
}

/// A prefix in an object store. Blocking methods run the store's futures on the current
/// Tokio runtime and are for the sink's blocking thread; async methods for async code.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The URL it was given, without a trailing `/`.
    base: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.base)
    }
}

fn store_error(err: object_store::Error) -> io::Error {
    let kind = match &err {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            io::ErrorKind::AlreadyExists
        }
        object_store::Error::NotImplemented => io::ErrorKind::Unsupported,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err.to_string())
}

impl Remote {
    /// The object under the prefix at `relative` (`/`-separated).
    pub fn path(&self, relative: &str) -> ObjectPath {
        let mut path = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.child(part);
        }
        path
    }

    /// The URL of `relative` (for DuckDB's views and messages).
    pub fn url(&self, relative: &str) -> String {
        format!("{}/{relative}", self.base)
    }

    /// Reads an object; `None` when there is none.
    ///
    /// # Errors
    /// The store's errors other than "not found".
    pub async fn get(&self, relative: &str) -> io::Result<Option<Bytes>> {
        match self.store.get(&self.path(relative)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(store_error)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(store_error(err)),
        }
    }

    /// Writes an object whole (readers see the old one or the new one).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn put(&self, relative: &str, content: Bytes) -> io::Result<()> {
        self.store
            .put(&self.path(relative), PutPayload::from(content))
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// Writes an object only if there is none yet.
    ///
    /// # Errors
    /// [`io::ErrorKind::AlreadyExists`] when the object exists; `Unsupported` when the
    /// store cannot put conditionally; its other errors.
    pub async fn put_new(&self, relative: &str, content: Bytes) -> io::Result<()> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.path(relative), PutPayload::from(content), options)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// Deletes an object (no error when it is already gone).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn delete(&self, relative: &str) -> io::Result<()> {
        match self.store.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(store_error(err)),
        }
    }

    /// Uploads a local file as `relative`: one PUT, or a multipart upload for a big file
    /// (aborted on error). Either way the object appears only once it is whole.
    ///
    /// # Errors
    /// Reading the file, or the store's errors.
    pub async fn upload(&self, local: &Path, relative: &str) -> io::Result<()> {
        let size = tokio::fs::metadata(local).await?.len();
        let path = self.path(relative);
        if size < MULTIPART_BYTES as u64 {
            let content = tokio::fs::read(local).await?;
            return self
                .store
                .put(&path, PutPayload::from(content))
                .await
                .map(|_| ())
                .map_err(store_error);
        }
        let upload = self.store.put_multipart(&path).await.map_err(store_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_BYTES);
        let mut file = tokio::fs::File::open(local).await?;
        let mut buffer = vec![0; 1 << 20];
        loop {
            let read = match file.read(&mut buffer).await {
                Ok(read) => read,
                Err(err) => {
                    if writer.abort().await.is_err() {
                        // The upload stays incomplete: never listed, reclaimed by the
                        // bucket's lifecycle rule.
                    }
                    return Err(err);
                }
            };
            if read == 0 {
                break;
            }
            if let Err(err) = writer.wait_for_capacity(4).await {
                return Err(store_error(err));
            }
            writer.write(&buffer[..read]);
        }
        writer.finish().await.map(|_| ()).map_err(store_error)
    }

    /// The relative paths of every object under `relative` (recursively), sorted.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(&self, relative: &str) -> io::Result<Vec<String>> {
        Ok(self
            .list_sizes(relative)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// [`Remote::list`] with each object's size in bytes.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list_sizes(&self, relative: &str) -> io::Result<Vec<(String, u64)>> {
        let root = self.path(relative);
        let mut listing = self.store.list(Some(&root));
        let mut out = Vec::new();
        let skip = self.prefix.parts().count();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(store_error)?;
            let parts: Vec<String> = meta
                .location
                .parts()
                .skip(skip)
                .map(|p| p.as_ref().to_owned())
                .collect();
            out.push((parts.join("/"), meta.size));
        }
        out.sort();
        Ok(out)
    }

    /// The names of the "folders" directly under the prefix.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn folders(&self) -> io::Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(store_error)?;
        let mut out: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// [`Remote::upload`] from a blocking thread (the sink's).
    ///
    /// # Errors
    /// As [`Remote::upload`].
    pub fn upload_blocking(&self, local: &Path, relative: &str) -> io::Result<()> {
        Handle::current().block_on(self.upload(local, relative))
    }

    /// [`Remote::put`] from a blocking thread.
    ///
    /// # Errors
    /// As [`Remote::put`].
    pub fn put_blocking(&self, relative: &str, content: Vec<u8>) -> io::Result<()> {
        Handle::current().block_on(self.put(relative, Bytes::from(content)))
    }

    /// [`Remote::folders`] from a blocking thread.
    ///
    /// # Errors
    /// As [`Remote::folders`].
    pub fn folders_blocking(&self) -> io::Result<Vec<String>> {
        Handle::current().block_on(self.folders())
    }
}

/// A fresh local staging folder for a remote destination's files before upload; removed
/// when dropped.
pub struct Staging {
    path: PathBuf,
}

impl Staging {
    /// Creates the folder under the system's temporary directory.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn create() -> io::Result<Staging> {
        remove_dead_staging_folders();
        let path = std::env::temp_dir().join(format!(
            "source-stripe-staging-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Staging { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes the staging folders of processes that are gone (killed before their `Drop`):
/// they only hold copies of files that were uploaded, or never counted.
fn remove_dead_staging_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("source-stripe-staging-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() && std::fs::remove_dir_all(entry.path()).is_err()
        {
            // Someone else's to clean up.
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.path).is_err() {
            // Left in the temporary directory; it holds only copies of uploaded files.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_dirs_parse_by_scheme() {
        let local = |s: &str| match Destination::parse(Path::new(s)).unwrap() {
            Destination::Local(path) => path,
            Destination::Remote(r) => panic!("{s}: remote {r:?}"),
        };
        assert_eq!(local("out/stripe"), PathBuf::from("out/stripe"));
        assert_eq!(local("file:///tmp/stripe"), PathBuf::from("/tmp/stripe"));
        let err = Destination::parse(Path::new("ftp://host/x")).unwrap_err();
        assert!(
            err.contains("--output-dir") && err.contains("ftp://"),
            "{err}"
        );
    }

    #[test]
    fn remote_paths_are_under_the_prefix() {
        let remote = Remote {
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: ObjectPath::from("team/stripe"),
            base: "s3://bucket/team/stripe".to_owned(),
        };
        assert_eq!(
            remote.path("customers/stripe_account=acct_1/part-1.parquet"),
            ObjectPath::from("team/stripe/customers/stripe_account=acct_1/part-1.parquet")
        );
        assert_eq!(
            remote.url("state.json"),
            "s3://bucket/team/stripe/state.json"
        );
    }

    #[tokio::test]
    async fn uploads_lists_and_conditional_puts() {
        let remote = Remote {
            store: Arc::new(object_store::memory::InMemory::new()),
            prefix: ObjectPath::from("p"),
            base: "memory://b/p".to_owned(),
        };
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let content: Vec<u8> = (0..MULTIPART_BYTES + 12345).map(|i| i as u8).collect();
        std::fs::write(&big, &content).unwrap();
        remote.upload(&big, "s/part-1.parquet").await.unwrap();
        assert_eq!(
            remote
                .get("s/part-1.parquet")
                .await
                .unwrap()
                .unwrap()
                .as_ref(),
            content.as_slice(),
            "a multipart upload holds the whole file"
        );
        remote.put("state.json", Bytes::from("[]")).await.unwrap();
        assert_eq!(
            remote.list("").await.unwrap(),
            ["s/part-1.parquet", "state.json"]
        );
        assert_eq!(remote.folders().await.unwrap(), ["s"]);
        remote.put_new("lock", Bytes::from("a")).await.unwrap();
        let err = remote.put_new("lock", Bytes::from("b")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        remote.delete("lock").await.unwrap();
        remote.delete("lock").await.unwrap();
        assert!(remote.get("lock").await.unwrap().is_none());
    }
}
