//! Logs read where they live: a CloudTrail bucket laid out as CloudTrail writes it
//! (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, `Records[]` envelopes, a
//! digest file and a folder marker beside them) on a local S3 server (moto), ingested with
//! `mfascope ingest s3://…`. The event ids read back by pyarrow equal a local ingest of the same
//! records; a rerun downloads nothing; `--follow` picks up objects added later (under earlier
//! prefixes too) exactly once; kill -9 at 10 moments leaves the exact id set.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use common::s3::S3Server;

/// Uploads the CloudTrail records of an NDJSON file as CloudTrail lays them out: 3 accounts × 2
/// regions, one gzip object per account, region and quarter hour. `base` uploads three objects in
/// four (plus a digest file and a folder marker), `late` the fourth.
const LAYOUT: &str = r#"
import boto3, collections, gzip, hashlib, json, sys
addr, bucket, src, which = sys.argv[1:5]
s3 = boto3.client('s3', endpoint_url='http://' + addr, aws_access_key_id='test',
                  aws_secret_access_key='test', region_name='us-east-1')
accounts = ['111122223333', '444455556666', '777788889999']
regions = ['us-east-1', 'eu-west-1']
objects = collections.defaultdict(list)
for line in open(src):
    r = json.loads(line)
    h = int(hashlib.sha1(r['eventID'].encode()).hexdigest(), 16)
    acct, region = accounts[h % 3], regions[(h // 3) % 2]
    r['recipientAccountId'], r['awsRegion'] = acct, region
    t = r['eventTime']
    quarter = '%02d' % (int(t[14:16]) // 15 * 15)
    objects[(acct, region, t[:10].replace('-', '/'), t[11:13] + quarter)].append(r)
n = 0
for i, ((acct, region, day, hour), records) in enumerate(sorted(objects.items())):
    if (i % 4 == 3) != (which == 'late'):
        continue
    stamp = day.replace('/', '') + 'T' + hour + 'Z'
    tag = hashlib.md5((acct + region + stamp).encode()).hexdigest()[:16]
    key = (f'AWSLogs/{acct}/CloudTrail/{region}/{day}/'
           f'{acct}_CloudTrail_{region}_{stamp}_{tag}.json.gz')
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({'Records': records}).encode()))
    n += 1
if which == 'base':
    digest = {'awsAccountId': accounts[0], 'digestStartTime': '2024-05-01T00:00:00Z',
              'logFiles': []}
    s3.put_object(Bucket=bucket, Body=gzip.compress(json.dumps(digest).encode()),
                  Key=f'AWSLogs/{accounts[0]}/CloudTrail-Digest/us-east-1/2024/05/01/d.json.gz')
    s3.put_object(Bucket=bucket, Key='AWSLogs/', Body=b'')
print(n)
"#;

/// Event ids under two outputs, read by pyarrow: rows and distinct ids of `got`, ids missing
/// from it and unexpected in it against `want`.
const COMPARE: &str = r#"
import json, sys, pyarrow.dataset as ds
def ids(root):
    return ds.dataset(root + '/events', format='parquet', partitioning='hive') \
        .to_table(columns=['event_id']).column('event_id').to_pylist()
want, got = set(ids(sys.argv[1])), ids(sys.argv[2])
print(json.dumps({'want': len(want), 'rows': len(got), 'distinct': len(set(got)),
    'missing': len(want - set(got)), 'unexpected': len(set(got) - want)}))
"#;

/// The CloudTrail bucket (all of it but the `late` quarter unless `late`), its ground truth (a
/// local ingest of the same records) and the number of objects uploaded.
struct Bucket {
    s3: S3Server,
    dir: tempfile::TempDir,
    truth: std::path::PathBuf,
    records: std::path::PathBuf,
    base_objects: u64,
    /// The SQS queue S3 notifies of every object created, when asked for.
    queue: Option<String>,
}

/// Creates a queue (messages seen again 3 s after a receive without delete) and has the bucket
/// notify it of every object created; prints the queue URL.
const NOTIFY: &str = r#"
import boto3, sys
kw = dict(endpoint_url='http://' + sys.argv[1], aws_access_key_id='test',
          aws_secret_access_key='test', region_name='us-east-1')
sqs = boto3.client('sqs', **kw)
url = sqs.create_queue(QueueName='trail-events', Attributes={'VisibilityTimeout': '3'})['QueueUrl']
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
boto3.client('s3', **kw).put_bucket_notification_configuration(Bucket=sys.argv[2],
    NotificationConfiguration={'QueueConfigurations': [
        {'QueueArn': arn, 'Events': ['s3:ObjectCreated:*']}]})
print(url)
"#;

/// Messages left on the queue, visible or not.
const QUEUE_DEPTH: &str = r#"
import boto3, sys
sqs = boto3.client('sqs', endpoint_url='http://' + sys.argv[1], aws_access_key_id='test',
                   aws_secret_access_key='test', region_name='us-east-1')
a = sqs.get_queue_attributes(QueueUrl=sys.argv[2], AttributeNames=['All'])['Attributes']
print(int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible']))
"#;

impl Bucket {
    fn start(events: u32) -> Bucket {
        Self::start_with(events, false)
    }

    fn start_with(events: u32, notify: bool) -> Bucket {
        let s3 = S3Server::start("trail");
        let queue = notify.then(|| {
            let out = common::output_ok(
                Command::new(common::s3::python()).args(["-c", NOTIFY, &s3.addr, &s3.bucket]),
            );
            String::from_utf8(out).unwrap().trim().to_string()
        });
        let dir = tempfile::tempdir().unwrap();
        let records = common::generate(
            dir.path(),
            "cloudtrail",
            &[
                "--log-format",
                "cloudtrail",
                "--events",
                &events.to_string(),
                "--days",
                "3",
                "--seed",
                "25",
                "--attacks",
            ],
        );
        let truth = dir.path().join("truth");
        common::ingest_json(&[&records], &truth);
        let mut bucket = Bucket {
            s3,
            dir,
            truth,
            records,
            base_objects: 0,
            queue,
        };
        bucket.base_objects = bucket.upload("base");
        bucket
    }

    fn upload(&self, which: &str) -> u64 {
        let out = common::output_ok(
            Command::new(common::s3::python())
                .args(["-c", LAYOUT, &self.s3.addr, &self.s3.bucket])
                .arg(&self.records)
                .arg(which),
        );
        String::from_utf8(out).unwrap().trim().parse().unwrap()
    }

    fn ingest(&self, out: &Path, extra: &[&str]) -> Command {
        let mut cmd = common::bin();
        cmd.args(["ingest", "--no-progress", "--format", "json", "--out"])
            .arg(out)
            .args(extra)
            .arg(self.s3.url("AWSLogs/"));
        self.s3.env(&mut cmd);
        cmd
    }

    fn queue_depth(&self) -> u64 {
        let queue = self.queue.as_deref().unwrap();
        let out = common::output_ok(Command::new(common::s3::python()).args([
            "-c",
            QUEUE_DEPTH,
            &self.s3.addr,
            queue,
        ]));
        String::from_utf8(out).unwrap().trim().parse().unwrap()
    }

    fn compare(&self, out: &Path) -> serde_json::Value {
        serde_json::from_slice(&common::py(COMPARE, &[&self.truth, out])).unwrap()
    }
}

#[test]
fn a_cloudtrail_bucket_is_ingested_exactly_and_follow_reads_new_objects_once() {
    let bucket = Bucket::start(4000);
    let out = bucket.dir.path().join("out");
    // The whole bucket but the late quarter: every object read, the digest and the marker named.
    let first = common::output_json(&mut bucket.ingest(&out, &[]));
    let objects = &first["objects"];
    assert_eq!(objects["read"], bucket.base_objects, "{first}");
    assert_eq!(objects["errors"], 0, "{first}");
    assert_eq!(
        objects["not_logs"]["CloudTrail digest (integrity hashes, no events)"], 1,
        "{first}"
    );
    assert_eq!(
        objects["not_logs"]["empty object (folder marker)"], 1,
        "{first}"
    );
    assert!(bucket.base_objects > 100, "{}", bucket.base_objects);
    assert_eq!(first["deadletter"], 0, "{first}");

    // A rerun downloads nothing.
    let again = common::output_json(&mut bucket.ingest(&out, &[]));
    assert_eq!(again["objects"]["read"], 0, "{again}");
    assert_eq!(again["objects"]["already_ingested"], bucket.base_objects);
    assert_eq!(again["objects"]["bytes_downloaded"], 0, "{again}");
    assert_eq!(again["events"], 0, "{again}");

    // Follow: the late quarter lands under every account, region and day, most of it before the
    // greatest key already seen (found by the periodic full listing).
    let follow = bucket.ingest(
        &out,
        &[
            "--follow",
            "--list-every",
            "300ms",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let (late, report) = follow_late_objects(&bucket, follow, first["events"].as_f64().unwrap());
    assert_eq!(report["objects"]["read"], late, "{report}");
    common::assert_exact_ids(&bucket.compare(&out));
}

#[test]
fn kill_9_at_10_moments_while_reading_a_bucket_leaves_the_exact_id_set() {
    let bucket = Bucket::start(6000);
    let out = bucket.dir.path().join("out");
    bucket.upload("late");
    let killed = common::kill_9_at_moments(10, 0x5eed, (100, 700), || {
        let mut cmd = bucket.ingest(&out, &["--segment-rows", "200"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    });
    assert!(killed >= 5, "only {killed} runs were killed mid-run");
    let last = common::output_json(&mut bucket.ingest(&out, &["--segment-rows", "200"]));
    assert_eq!(last["objects"]["errors"], 0, "{last}");
    common::assert_exact_ids(&bucket.compare(&out));
}

/// Start `follow`, upload the late quarter, wait until the events of the whole bucket are in
/// (`before` of them already were), let it list a few more times, stop it; returns the late
/// objects uploaded and the run's report.
fn follow_late_objects(
    bucket: &Bucket,
    mut follow: Command,
    before: f64,
) -> (u64, serde_json::Value) {
    let mut child = follow
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _stderr) = common::metrics_address(child.stderr.take().unwrap());
    let late = bucket.upload("late");
    assert!(late > 30, "{late}");
    let want = bucket.compare(&bucket.truth)["want"].as_u64().unwrap() as f64;
    let t = Instant::now();
    loop {
        let page = common::get(&addr, "/metrics");
        let events = common::value(&page, "mfascope_ingest_events_total").unwrap_or(0.0);
        if before + events >= want {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "follow read {events} of {} new events",
            want - before
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A few more listings or receives: nothing is read twice.
    std::thread::sleep(Duration::from_secs(4));
    common::terminate(&child);
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    (late, serde_json::from_slice(&done.stdout).unwrap())
}

#[test]
fn sqs_notifications_are_read_exactly_once_and_deleted_after_their_commit() {
    let bucket = Bucket::start_with(1000, true);
    let out = bucket.dir.path().join("out");
    let queue = bucket.queue.clone().unwrap();
    let sqs = ["--sqs-queue", queue.as_str(), "--segment-rows", "100"];
    let killed = common::kill_9_at_moments(3, 0xa11ce, (800, 2000), || {
        let mut cmd = bucket.ingest(&out, &sqs);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    });
    assert!(killed >= 2, "only {killed} runs were killed mid-run");
    // Drains what is visible (messages received by a killed run come back 3 s later).
    let drained = common::output_json(&mut bucket.ingest(&out, &sqs));
    assert_eq!(drained["objects"]["errors"], 0, "{drained}");
    assert_eq!(drained["objects"]["listings"], 0, "{drained}");
    assert_eq!(
        drained["objects"]["messages"], drained["objects"]["messages_deleted"],
        "{drained}"
    );
    // Live: the late quarter arrives as notifications only.
    let mut follow = bucket.ingest(&out, &sqs);
    follow.args(["--follow", "--metrics-listen", "127.0.0.1:0"]);
    let before = bucket.compare(&out)["rows"].as_f64().unwrap();
    let (late, report) = follow_late_objects(&bucket, follow, before);
    assert!(
        report["objects"]["read"].as_u64().unwrap() >= late,
        "{report}"
    );
    assert_eq!(report["objects"]["listings"], 0, "{report}");
    common::assert_exact_ids(&bucket.compare(&out));
    assert_eq!(bucket.queue_depth(), 0, "every message deleted");
}
