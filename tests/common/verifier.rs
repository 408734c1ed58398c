//! A reference verifier (`mfascope verifier serve`) as a child process on a free loopback port,
//! and a minimal HTTP/1.1 client for its JSON API.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A running verifier.
pub struct Verifier {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Its state directory.
    pub state: PathBuf,
    /// Its stderr (diagnostics) file.
    pub log: PathBuf,
}

impl Verifier {
    /// Start on `state` with extra `serve` arguments; diagnostics at debug level to a file.
    pub fn start(state: &Path, extra: &[&str]) -> Verifier {
        let log = state.with_extension("log");
        let mut child = super::bin()
            .args([
                "--log",
                "mfascope=debug,info",
                "verifier",
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--state")
            .arg(state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let (scheme, addr) = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|url| url.split_once("://"))
            .unwrap_or_else(|| {
                panic!(
                    "no address from the verifier: {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        let (scheme, addr) = (scheme.to_string(), addr.to_string());
        Verifier {
            child: Some(child),
            addr,
            scheme,
            state: state.to_path_buf(),
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.state.join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `method path` with an optional bearer token and JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        let body = body.unwrap_or("");
        let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Reply {
            status,
            headers: head.to_string(),
            body: body.to_string(),
        }
    }

    /// Write a probe config for this verifier at `path`: `top` lines before its `[mfascope]`
    /// section, `section` lines in it (after the admin token, named relative to the config's
    /// folder when it is below it, as the probe resolves it).
    pub fn probe_config(&self, path: &Path, top: &str, section: &str) -> PathBuf {
        let token = self.state.join("admin.token");
        let base = path.parent().unwrap();
        let token = token.strip_prefix(base).unwrap_or(&token);
        let text = format!(
            "kind = \"mfascope\"\n{top}[mfascope]\nadmin_token = {{ file = \"{}\" }}\n{section}",
            token.display()
        );
        std::fs::write(path, text).unwrap();
        path.to_path_buf()
    }

    /// Admin call.
    pub fn admin(&self, method: &str, path: &str, body: &serde_json::Value) -> Reply {
        let body = (!body.is_null()).then(|| body.to_string());
        self.call(method, path, Some(&self.admin_token()), body.as_deref())
    }

    /// SIGTERM and wait; the exit status and everything the verifier logged.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        (
            status,
            std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The base32 secret of an `otpauth://` URI.
pub fn uri_secret(uri: &str) -> String {
    uri.split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

/// `oathtool` output for `args` (an independent OTP implementation).
pub fn oathtool(args: &[&str]) -> String {
    let out = std::process::Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool (Debian package; scripts/test installs it)");
    assert!(out.status.success(), "oathtool {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
