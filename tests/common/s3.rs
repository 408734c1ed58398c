//! A private S3-compatible server (moto, from PyPI, installed by `scripts/test` into the test
//! venv) on a free 127.0.0.1 port, a bucket in it, and pyarrow's own S3 client as the independent
//! reader of what mfascope wrote there.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test venv's Python (with pyarrow, boto3 and moto).
pub fn python() -> String {
    std::env::var("MFASCOPE_PYTHON")
        .expect("MFASCOPE_PYTHON is not set: run scripts/test (it installs pyarrow and moto)")
}

/// A running moto server; stopped on drop.
pub struct S3Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The bucket created for the test.
    pub bucket: String,
}

impl S3Server {
    /// Start the server and create `bucket`.
    pub fn start(bucket: &str) -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let moto = std::path::Path::new(&python())
            .with_file_name("moto_server")
            .display()
            .to_string();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {moto}: {e} (run scripts/test to install moto)"));
        let addr = format!("127.0.0.1:{port}");
        let server = S3Server {
            child,
            addr: addr.clone(),
            bucket: bucket.to_string(),
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server.python(&format!(
            "import boto3; boto3.client('s3', endpoint_url='http://{addr}', aws_access_key_id='test', \
             aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='{bucket}')"
        ));
        server
    }

    /// `s3://BUCKET/prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// Environment that points object_store (mfascope) at this server.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", format!("http://{}", self.addr))
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
    }

    /// Run a Python snippet (pyarrow's `S3FileSystem` is bound to `s3`) and return its stdout.
    pub fn python(&self, code: &str) -> String {
        let prelude = format!(
            "import json, sys, pyarrow.fs as pafs, pyarrow.dataset as ds\n\
             s3 = pafs.S3FileSystem(endpoint_override='{}', scheme='http', access_key='test', \
             secret_key='test', region='us-east-1')\n",
            self.addr
        );
        let out = Command::new(python())
            .args(["-c", &format!("{prelude}{code}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// What is under `prefix`, read by pyarrow: event rows, distinct ids, the ids missing from
    /// and unexpected against the `event_id`s of the NDJSON file `produced`, dead-letter lines,
    /// and leftovers of commits (staged objects, intent logs).
    pub fn check(&self, prefix: &str, produced: &std::path::Path) -> serde_json::Value {
        let code = format!(
            r#"
root = '{bucket}/{prefix}'
ids = []
for line in open({produced:?}):
    try:
        ids.append(json.loads(line)["event_id"])
    except ValueError:
        pass
files = s3.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
names = [f.path[len(root) + 1:] for f in files if f.type == pafs.FileType.File]
got = []
if any(n.startswith('events/') for n in names):
    t = ds.dataset(root + '/events', filesystem=s3, format='parquet', partitioning='hive')
    got = t.to_table(columns=['event_id']).column('event_id').to_pylist()
dead = 0
for n in names:
    if n.startswith('deadletter/'):
        with s3.open_input_stream(root + '/' + n) as f:
            dead += f.read().count(b'\n')
print(json.dumps({{"produced": len(ids), "rows": len(got), "distinct": len(set(got)),
    "missing": len(set(ids) - set(got)), "unexpected": len(set(got) - set(ids)),
    "dead_letters": dead,
    "staged": [n for n in names if '/staging/' in n or n.endswith('pending.json')],
    "findings": len([n for n in names if n.startswith('findings/')])}}))
"#,
            bucket = self.bucket,
            produced = produced.display().to_string(),
        );
        serde_json::from_str(&self.python(&code)).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
