//! Where outputs are written and stored data is read: a local directory, or an object store URL
//! (`s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`) through the
//! `object_store` crate DataFusion itself reads with. Credentials, region and endpoint come from
//! the usual environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`…).
//!
//! The ingest threads are synchronous; remote operations run on one small runtime owned by this
//! module, so they may be called from any thread that is not itself inside an async task.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutMode, PutOptions, PutPayload, PutResult,
    UpdateVersion, WriteMultipart,
};
use url::Url;

use super::{SinkError, io_err};

/// Files at least this large are uploaded in parts.
const MULTIPART_FROM: u64 = 32 << 20;

/// A local directory or an object store prefix.
#[derive(Clone)]
pub enum Location {
    /// A directory on a local (or mounted) file system.
    Local(PathBuf),
    /// A prefix in an object store.
    Remote(Arc<Remote>),
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote(r) => write!(f, "{}", r.url),
        }
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Local(p)
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Local(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Local(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

impl Location {
    /// Parse `--out` / `--data`: a URL with an object store scheme, a `file://` URL, or a path.
    pub fn parse(s: &str) -> Result<Location, String> {
        match Url::parse(s) {
            Ok(url) if url.scheme() == "file" => url
                .to_file_path()
                .map(Location::Local)
                .map_err(|()| format!("{s}: not a local file URL")),
            Ok(url) if is_remote(&url) => Remote::open(url).map(Location::Remote),
            _ => Ok(Location::Local(PathBuf::from(s))),
        }
    }

    /// Whether `s` names a remote location ([`Location::parse`] opens it as a store) rather than
    /// a local path.
    pub fn names_remote(s: &str) -> bool {
        Url::parse(s).is_ok_and(|url| url.scheme() != "file" && is_remote(&url))
    }

    /// Human-readable name of `rel` under this location (for messages).
    pub fn describe(&self, rel: &str) -> String {
        match self {
            Location::Local(p) => p.join(rel).display().to_string(),
            Location::Remote(r) => r.describe(rel),
        }
    }

    /// The local directory, when this is one.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Remote(_) => None,
        }
    }

    /// Read `rel`, `None` when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, SinkError> {
        match self {
            Location::Local(root) => {
                let path = root.join(rel);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("reading", path)(e)),
                }
            }
            Location::Remote(r) => Ok(r.get(rel)?.map(|(bytes, _)| bytes)),
        }
    }

    /// Paths (relative to the root, `/`-separated) of the files under `rel` ending in `suffix`.
    pub fn files_under(&self, rel: &str, suffix: &str) -> Result<Vec<String>, SinkError> {
        match self {
            Location::Local(root) => Ok(walkdir::WalkDir::new(root.join(rel))
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .filter_map(|e| {
                    let path = e.path().strip_prefix(root).ok()?.to_string_lossy();
                    path.ends_with(suffix).then(|| path.replace('\\', "/"))
                })
                .collect()),
            Location::Remote(r) => Ok(r
                .list(rel)?
                .into_iter()
                .map(|k| k.trim_start_matches('/').to_string())
                .filter(|k| k.ends_with(suffix))
                .collect()),
        }
    }

    /// Like [`Location::files_under`], with each file's last modification (epoch ms).
    pub fn files_modified_under(
        &self,
        rel: &str,
        suffix: &str,
    ) -> Result<Vec<(String, i64)>, SinkError> {
        match self {
            Location::Local(root) => {
                let mut out = Vec::new();
                for e in walkdir::WalkDir::new(root.join(rel)).into_iter().flatten() {
                    if !e.file_type().is_file() {
                        continue;
                    }
                    let Ok(path) = e.path().strip_prefix(root) else {
                        continue;
                    };
                    let path = path.to_string_lossy().replace('\\', "/");
                    if !path.ends_with(suffix) {
                        continue;
                    }
                    let modified = e
                        .metadata()
                        .map_err(|err| io_err("reading", e.path())(err.into()))?
                        .modified()
                        .map_err(io_err("reading", e.path()))?;
                    let ms = chrono::DateTime::<chrono::Utc>::from(modified).timestamp_millis();
                    out.push((path, ms));
                }
                Ok(out)
            }
            Location::Remote(r) => Ok(r
                .list_modified(rel)?
                .into_iter()
                .filter(|(k, _)| k.ends_with(suffix))
                .collect()),
        }
    }

    /// Delete the file `rel` (nothing when it is not there).
    pub fn remove(&self, rel: &str) -> Result<(), SinkError> {
        match self {
            Location::Local(root) => match std::fs::remove_file(root.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io_err("removing", root.join(rel))(e))
                }
                _ => Ok(()),
            },
            Location::Remote(r) => r.delete(rel),
        }
    }

    /// Move the local file `tmp` (fsynced) to `rel` under the root: a rename on a local
    /// directory (on the same file system), an upload to object storage.
    pub fn place(&self, tmp: &Path, rel: &str) -> Result<(), SinkError> {
        match self {
            Location::Local(root) => {
                let dst = root.join(rel);
                if let Some(dir) = dst.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
                }
                std::fs::rename(tmp, &dst).map_err(io_err("renaming", tmp))?;
                super::state::sync_parent(&dst)
            }
            Location::Remote(r) => {
                r.put_file(tmp, rel)?;
                std::fs::remove_file(tmp).map_err(io_err("removing", tmp))
            }
        }
    }

    /// Whether any file under `rel` ends in `suffix`.
    pub fn has_file_under(&self, rel: &str, suffix: &str) -> Result<bool, SinkError> {
        match self {
            Location::Local(root) => Ok(walkdir::WalkDir::new(root.join(rel))
                .into_iter()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(suffix))),
            Location::Remote(r) => r.any_under(rel, suffix),
        }
    }
}

/// One-letter "schemes" are Windows drive letters, not URLs.
fn is_remote(url: &Url) -> bool {
    url.scheme().len() > 1
}

/// An object store and the prefix under it.
pub struct Remote {
    /// The URL as given, without a trailing slash.
    url: String,
    /// `scheme://authority`, under which DataFusion registers the store.
    base: Url,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
}

/// The runtime remote calls from synchronous code run on (never dropped).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("object-store")
            .enable_all()
            .build()
            .expect("a tokio runtime starts")
    })
}

impl Remote {
    /// Build the store for `url` from the environment (no network access yet).
    pub fn open(url: Url) -> Result<Arc<Remote>, String> {
        use object_store::aws::AmazonS3Builder;
        use object_store::azure::MicrosoftAzureBuilder;
        use object_store::gcp::GoogleCloudStorageBuilder;
        let text = url.as_str().trim_end_matches('/').to_string();
        let (scheme, prefix) =
            ObjectStoreScheme::parse(&url).map_err(|e| format!("{text}: {e}"))?;
        let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
            ObjectStoreScheme::AmazonS3 => AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as _),
            ObjectStoreScheme::GoogleCloudStorage => GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as _),
            ObjectStoreScheme::MicrosoftAzure => MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map(|s| Arc::new(s) as _),
            _ => {
                return Err(format!(
                    "{text}: unsupported location (use a directory, s3://, gs:// or az://)"
                ));
            }
        };
        let store = built.map_err(|e| format!("{text}: {e}"))?;
        let base = Url::parse(&format!("{}://{}", url.scheme(), url.authority()))
            .map_err(|e| format!("{text}: {e}"))?;
        Ok(Arc::new(Remote {
            url: text,
            base,
            store,
            prefix,
        }))
    }

    /// `scheme://authority` of the store (what DataFusion registers it under).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The prefix under the store's root (empty for a whole bucket).
    pub fn prefix(&self) -> &ObjPath {
        &self.prefix
    }

    /// The URL as given, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// URL of `rel` (a `/`-separated path under the prefix).
    pub fn describe(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    fn key(&self, rel: &str) -> ObjPath {
        let rel = rel.trim_matches('/');
        if self.prefix.as_ref().is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn err(&self, op: &'static str, rel: &str) -> impl FnOnce(object_store::Error) -> SinkError {
        let url = self.describe(rel);
        move |source| SinkError::Store { op, url, source }
    }

    /// Run `f` to completion from synchronous code. Called from a thread that is itself
    /// driving a runtime (the notifier's senders), it waits on a helper thread instead: a
    /// runtime cannot be entered from inside another.
    pub fn block_on<F: Future + Send>(f: F) -> F::Output
    where
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| runtime().block_on(f))
                    .join()
                    .expect("an object store call does not panic")
            })
        } else {
            runtime().block_on(f)
        }
    }

    /// Run `f` in the background on the object-store runtime (downloads ahead of the reader).
    pub fn spawn<F>(f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        runtime().spawn(f)
    }

    /// Read `rel` with its version, `None` when it does not exist.
    pub fn get(&self, rel: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>, SinkError> {
        let key = self.key(rel);
        Self::block_on(async {
            match self.store.get(&key).await {
                Ok(r) => {
                    let version = UpdateVersion {
                        e_tag: r.meta.e_tag.clone(),
                        version: r.meta.version.clone(),
                    };
                    Ok(Some((r.bytes().await?.to_vec(), version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(self.err("reading", rel))
    }

    /// Write `bytes` to `rel` (atomically: readers see the old or the new object) under `mode`.
    /// Errors are returned raw so callers can tell a failed precondition apart.
    pub fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<PutResult, object_store::Error> {
        let key = self.key(rel);
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        Self::block_on(self.store.put_opts(&key, PutPayload::from(bytes), opts))
    }

    /// Write `bytes` to `rel`, replacing what is there.
    pub fn put_overwrite(&self, rel: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        self.put(rel, bytes, PutMode::Overwrite)
            .map(|_| ())
            .map_err(self.err("writing", rel))
    }

    /// Upload the local file `local` to `rel` (in parts when large).
    pub fn put_file(&self, local: &Path, rel: &str) -> Result<(), SinkError> {
        let len = std::fs::metadata(local)
            .map_err(io_err("reading", local))?
            .len();
        if len < MULTIPART_FROM {
            let bytes = std::fs::read(local).map_err(io_err("reading", local))?;
            return self.put_overwrite(rel, bytes);
        }
        let key = self.key(rel);
        let result = Self::block_on(async {
            use std::io::Read;
            let mut file =
                std::fs::File::open(local).map_err(|e| object_store::Error::Generic {
                    store: "local",
                    source: Box::new(e),
                })?;
            let mut upload = WriteMultipart::new(self.store.put_multipart(&key).await?);
            let mut buf = vec![0u8; 8 << 20];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })?;
                if n == 0 {
                    break;
                }
                upload.wait_for_capacity(4).await?;
                upload.write(&buf[..n]);
            }
            upload.finish().await
        });
        result.map(|_| ()).map_err(self.err("uploading", rel))
    }

    /// Server-side copy of `from` to `to` (replacing `to`).
    pub fn copy(&self, from: &str, to: &str) -> Result<(), SinkError> {
        let (f, t) = (self.key(from), self.key(to));
        Self::block_on(self.store.copy(&f, &t)).map_err(self.err("copying to", to))
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool, SinkError> {
        let key = self.key(rel);
        match Self::block_on(self.store.head(&key)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("checking", rel)(e)),
        }
    }

    /// Delete `rel`; a missing object is not an error.
    pub fn delete(&self, rel: &str) -> Result<(), SinkError> {
        let key = self.key(rel);
        match Self::block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("deleting", rel)(e)),
        }
    }

    /// Whether an object under `rel` ends in `suffix` (stops listing at the first).
    pub fn any_under(&self, rel: &str, suffix: &str) -> Result<bool, SinkError> {
        use futures::StreamExt;
        let key = self.key(rel);
        Self::block_on(async {
            let mut list = self.store.list(Some(&key));
            while let Some(meta) = list.next().await {
                if meta?.location.as_ref().ends_with(suffix) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .map_err(self.err("listing", rel))
    }

    /// Paths (relative to the prefix) of every object under `rel`, with its last modification
    /// (epoch ms).
    pub fn list_modified(&self, rel: &str) -> Result<Vec<(String, i64)>, SinkError> {
        let key = self.key(rel);
        let metas: Vec<_> = Self::block_on(self.store.list(Some(&key)).try_collect())
            .map_err(self.err("listing", rel))?;
        let skip = if self.prefix.as_ref().is_empty() {
            0
        } else {
            self.prefix.as_ref().len() + 1
        };
        Ok(metas
            .into_iter()
            .map(|m| {
                (
                    m.location.as_ref()[skip..].to_string(),
                    m.last_modified.timestamp_millis(),
                )
            })
            .collect())
    }

    /// Paths (relative to the prefix) of every object under `rel`.
    pub fn list(&self, rel: &str) -> Result<Vec<String>, SinkError> {
        Ok(self
            .list_modified(rel)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
}
