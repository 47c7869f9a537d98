//! Test harness: runs the real `spor-sandbox` binary and talks plain HTTP/1.1 to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Upper bound for anything a test waits on.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_spor-sandbox")
}

/// Runs `spor-sandbox mint --data-dir DIR ARGS…` and returns its output.
pub fn mint_output(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("mint")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run spor-sandbox mint")
}

/// Mints a token and returns it, asserting success and a clean stdout.
pub fn mint(dir: &Path, args: &[&str]) -> String {
    let out = mint_output(dir, args);
    assert!(
        out.status.success(),
        "mint {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let token = stdout
        .strip_suffix('\n')
        .expect("mint output ends with a newline");
    assert!(!token.contains('\n'), "mint printed more than one line");
    token.to_owned()
}

/// A running `spor-sandbox serve`, killed on drop.
pub struct Sandbox {
    child: Option<Child>,
    /// The bound address from the ready line.
    pub addr: SocketAddr,
    // Option only so `terminate` can hand the dir back despite `Drop`.
    dir: Option<TempDir>,
}

impl Sandbox {
    /// Starts a server on a fresh data dir with no faults.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Starts a server on a fresh data dir with extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, env)
    }

    /// Starts a server on a fresh data dir with more `serve` arguments.
    pub fn start_with_args(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::launch(dir, &[], args)
    }

    /// Starts a server on `dir`; blocks until the ready line (bounded by TIMEOUT).
    pub fn start_in(dir: TempDir, env: &[(&str, &str)]) -> Self {
        Self::launch(dir, env, &[])
    }

    fn launch(dir: TempDir, env: &[(&str, &str)], args: &[&str]) -> Self {
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env_remove("SPOR_SANDBOX_FAULTS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn spor-sandbox serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let res = reader.read_line(&mut line).map(|_| line.clone());
            let _ = tx.send(res);
            // Keep draining so the server never blocks on a full pipe.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        });
        let mut sandbox = Self {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir: Some(dir),
        };
        let line = match rx.recv_timeout(TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => panic!("reading ready line: {e}"),
            Err(_) => panic!("no ready line within {TIMEOUT:?}"),
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|s| s.strip_suffix('\n'))
            .unwrap_or_else(|| {
                panic!(
                    "unexpected ready line {line:?}; stderr: {}",
                    sandbox.stderr_log()
                )
            });
        sandbox.addr = addr.parse().expect("socket address in ready line");
        assert_eq!(sandbox.addr.ip().to_string(), "127.0.0.1");
        assert_ne!(sandbox.addr.port(), 0);
        sandbox
    }

    /// Mints a token on this server's data dir (while it runs).
    pub fn mint(&self, args: &[&str]) -> String {
        mint(self.data_dir(), args)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("stderr.log")).unwrap_or_default()
    }

    /// Path of the data dir.
    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref().expect("data dir still owned").path()
    }

    /// Sends a request with an optional raw `Authorization` header value.
    pub fn request(&self, method: &str, path: &str, authorization: Option<&str>) -> Response {
        http(self.addr, method, path, authorization)
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub fn get(&self, path: &str, token: &str) -> Response {
        self.request("GET", path, Some(&format!("Bearer {token}")))
    }

    /// `DELETE path` with `Authorization: Bearer token`.
    pub fn delete(&self, path: &str, token: &str) -> Response {
        self.request("DELETE", path, Some(&format!("Bearer {token}")))
    }

    /// Sends SIGTERM, waits (bounded) for the exit status and hands back the data dir.
    pub fn terminate(mut self) -> (ExitStatus, TempDir) {
        let mut child = self.child.take().expect("child still owned");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let status = wait_bounded(&mut child);
        let dir = self.dir.take().expect("data dir still owned");
        (status, dir)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child to exit, killing it and panicking after TIMEOUT.
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Response {
    /// First header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub fn http(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(auth) = authorization {
        req.push_str(&format!("Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_str = std::str::from_utf8(&data[..eol]).expect("chunk size");
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Asserts the exact error envelope shape, status and code; returns the message.
pub fn assert_error(resp: &Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status, status, "status; body: {}", resp.text());
    let body = resp.json();
    let err = &body["error"];
    assert_eq!(err["code"], code, "code; body: {body}");
    assert!(err["details"].is_object(), "details object; body: {body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only `error` at top level"
    );
    err["message"]
        .as_str()
        .expect("message is a string")
        .to_owned()
}

/// Asserts a 401 with `WWW-Authenticate: Bearer` and the given reason.
pub fn assert_unauthorized(resp: &Response, message: &str) {
    assert_eq!(assert_error(resp, 401, "unauthorized"), message);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
}
