//! A local S3-compatible server for the object-storage tests: moto in server mode
//! (installed by tools/setup-clients.sh into `target/clients/moto`), on 127.0.0.1 and a
//! free port, stopped when dropped. Each test gets its own bucket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use crate::util::client;

/// Credentials moto accepts (it checks none); what the binary gets in its environment.
pub const ACCESS_KEY: &str = "moto-testing-access";
pub const SECRET_KEY: &str = "moto-testing-secret";

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            // Reaped below.
        }
        if self.child.wait().is_err() {
            // Already gone.
        }
    }
}

impl Moto {
    /// Starts moto and waits (30 s at most) until it answers.
    pub async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(client("moto", "moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts (tools/setup-clients.sh installs it)");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http.get(&moto.endpoint).send().await.is_ok() {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto did not answer in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a bucket (moto checks no signature).
    pub async fn bucket(&self, name: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{response:?}");
    }

    /// The environment the binary gets: object_store's `from_env` reads it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// A client of the bucket, for the test's own looks.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_bucket_name(bucket)
                .with_access_key_id(ACCESS_KEY)
                .with_secret_access_key(SECRET_KEY)
                .with_region("us-east-1")
                .build()
                .unwrap(),
        )
    }

    /// Every object under `prefix` (names relative to it), sorted.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let store = self.store(bucket);
        let prefix = object_store::path::Path::from(prefix);
        let skip = prefix.parts().count();
        let mut names: Vec<String> = store
            .list(Some(&prefix))
            .map(|m| {
                let m = m.unwrap();
                m.location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
            .await;
        names.sort();
        names
    }

    /// Copies every object under `prefix` into `local` (emptied first), so the local
    /// Parquet checks run on exactly what is stored.
    pub async fn mirror(&self, bucket: &str, prefix: &str, local: &Path) -> PathBuf {
        if local.exists() {
            std::fs::remove_dir_all(local).unwrap();
        }
        std::fs::create_dir_all(local).unwrap();
        let store = self.store(bucket);
        for name in self.list(bucket, prefix).await {
            let path = object_store::path::Path::from(format!("{prefix}/{name}"));
            let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
            let file = local.join(&name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, bytes).unwrap();
        }
        local.to_owned()
    }
}
