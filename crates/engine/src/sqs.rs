//! Amazon SQS for the object source: receives S3 event notifications (direct, wrapped by SNS,
//! or from EventBridge) and deletes a message only once every object it names is committed.
//! Requests use SQS's JSON protocol, signed with SigV4 by object_store's `AwsAuthorizer` with
//! credentials from the same standard chain the bucket uses (environment, web identity, ECS,
//! instance metadata). It never reads objects or parses log records.

use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredentialProvider};
use serde::Deserialize;
use serde_json::{Value, json};

/// Seconds a receive waits for messages (long polling) before answering empty.
const WAIT_SECONDS: u64 = 2;

/// A queue and how to sign requests to it.
pub struct Queue {
    url: String,
    endpoint: String,
    region: String,
    credentials: AwsCredentialProvider,
    http: reqwest::Client,
}

/// A received message: its receipt handle and the objects it announces.
#[derive(Debug)]
pub struct Message {
    /// What deleting the message takes.
    pub receipt: String,
    /// `(bucket, key)` of each object created.
    pub objects: Vec<(String, String)>,
    /// Records of the message that announce no new object (removals, test events).
    pub other: u64,
}

impl Queue {
    /// The queue at `url` (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`; another host with
    /// `AWS_ENDPOINT_URL_SQS` / `AWS_REGION` for local servers).
    pub fn new(url: &str) -> Result<Queue, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--sqs-queue {url}: {e}"))?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let region = host
            .strip_prefix("sqs.")
            .and_then(|h| h.split('.').next())
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .ok_or_else(|| format!("--sqs-queue {url}: cannot tell its region; set AWS_REGION"))?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_SQS")
            .unwrap_or_else(|_| format!("{}://{}/", parsed.scheme(), parsed.authority()));
        // The bucket builder's credential chain; the bucket name is never used.
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name("sqs-credentials")
            .with_region(&region)
            .build()
            .map_err(|e| format!("--sqs-queue {url}: credentials: {e}"))?;
        Ok(Queue {
            url: url.to_string(),
            endpoint,
            region,
            credentials: s3.credentials().clone(),
            http: reqwest::Client::new(),
        })
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call(&self, action: &str, body: Value) -> Result<Value, String> {
        let bytes = serde_json::to_vec(&body).expect("serializable");
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| format!("SQS {action}: credentials: {e}"))?;
        let mut request = http::Request::post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .body(object_store::client::HttpRequestBody::from(bytes.clone()))
            .map_err(|e| format!("SQS {action}: {e}"))?;
        AwsAuthorizer::new(&credential, "sqs", &self.region).authorize(&mut request, None);
        let request = reqwest::Request::try_from(request.map(|_| bytes))
            .map_err(|e| format!("SQS {action}: {e}"))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| format!("SQS {action} on {}: {e}", self.url))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "SQS {action} on {}: HTTP {status}: {}",
                self.url,
                text.chars().take(300).collect::<String>()
            ));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("SQS {action}: bad answer: {e}"))
    }

    /// Up to 10 messages, waiting up to [`WAIT_SECONDS`] for the first.
    pub async fn receive(&self) -> Result<Vec<Message>, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Raw {
            receipt_handle: String,
            body: String,
        }
        let answer = self
            .call(
                "ReceiveMessage",
                json!({"QueueUrl": self.url, "MaxNumberOfMessages": 10,
                       "WaitTimeSeconds": WAIT_SECONDS}),
            )
            .await?;
        let raw: Vec<Raw> = serde_json::from_value(answer["Messages"].clone()).unwrap_or_default();
        Ok(raw
            .into_iter()
            .map(|m| {
                let (objects, other) = announced(&m.body);
                Message {
                    receipt: m.receipt_handle,
                    objects,
                    other,
                }
            })
            .collect())
    }

    /// Delete a handled message.
    pub async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.call(
            "DeleteMessage",
            json!({"QueueUrl": self.url, "ReceiptHandle": receipt}),
        )
        .await
        .map(drop)
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({})", self.url)
    }
}

/// The objects a notification body announces as created, and how many of its records announce
/// none. S3 notifications URL-encode keys (`+` for a space).
fn announced(body: &str) -> (Vec<(String, String)>, u64) {
    let Ok(mut v) = serde_json::from_str::<Value>(body) else {
        return (Vec::new(), 1);
    };
    // SNS wraps the S3 notification in `Message`.
    if v["Type"] == "Notification"
        && let Some(inner) = v["Message"]
            .as_str()
            .and_then(|m| serde_json::from_str(m).ok())
    {
        v = inner;
    }
    // EventBridge: one object per event, keys not encoded.
    if v["detail-type"] == "Object Created" {
        let bucket = v["detail"]["bucket"]["name"].as_str();
        let key = v["detail"]["object"]["key"].as_str();
        return match (bucket, key) {
            (Some(b), Some(k)) => (vec![(b.to_string(), k.to_string())], 0),
            _ => (Vec::new(), 1),
        };
    }
    let Some(records) = v["Records"].as_array() else {
        return (Vec::new(), 1); // s3:TestEvent and anything else
    };
    let mut objects = Vec::new();
    let mut other = 0;
    for r in records {
        let created = r["eventName"]
            .as_str()
            .is_some_and(|n| n.starts_with("ObjectCreated:"));
        let bucket = r["s3"]["bucket"]["name"].as_str();
        let key = r["s3"]["object"]["key"].as_str().map(decode_key);
        match (created, bucket, key) {
            (true, Some(b), Some(k)) => objects.push((b.to_string(), k)),
            _ => other += 1,
        }
    }
    (objects, other)
}

/// A notification's key: form-encoded (`+` for a space, `%2B` for a plus).
fn decode_key(key: &str) -> String {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_direct_sns_and_eventbridge_name_their_objects() {
        let s3 = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},
            "object":{"key":"AWSLogs/1/CloudTrail/us-east-1/2024/05/01/a+b%3Dc.json.gz"}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"x"}}}]}"#;
        let (objects, other) = announced(s3);
        assert_eq!(
            objects,
            vec![(
                "b".to_string(),
                "AWSLogs/1/CloudTrail/us-east-1/2024/05/01/a b=c.json.gz".to_string()
            )]
        );
        assert_eq!(other, 1);
        let sns = json!({"Type": "Notification", "Message": s3}).to_string();
        assert_eq!(announced(&sns).0.len(), 1);
        let eb = r#"{"detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"k 1"}}}"#;
        assert_eq!(announced(eb), (vec![("b".into(), "k 1".into())], 0));
        assert_eq!(announced(r#"{"Event":"s3:TestEvent"}"#), (vec![], 1));
    }
}
