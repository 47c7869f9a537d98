//! The processes a run starts — the sandbox upstream, the companion and
//! nginx — each killed when its handle is dropped, so a failed run leaves
//! nothing behind.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Sends SIGTERM, if the process is still there.
    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Asks the process to stop (SIGTERM) and waits up to 10 s, then kills it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.terminate();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!(
                        "{} exited with {status}; log: {}",
                        self.name,
                        self.log_tail()
                    );
                }
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("{} did not stop within 10 s of SIGTERM", self.name)
            }
        }
    }

    /// Ends a process that is still running: SIGTERM first (nginx's master
    /// takes its workers with it only then), SIGKILL after 3 s.
    fn end(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        self.terminate();
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.start_kill();
    }

    /// Kills the process with SIGKILL (no chance to clean up, like a crash
    /// or a power cut short of the disk) and reaps it.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Where the process's stderr goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the process's stderr, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.end();
    }
}

/// Starts `program args…`, waits for a stdout line starting with
/// `listening on `, and returns the process, the rest of that line and the
/// time from spawn to the line.
pub async fn spawn_until_ready(
    name: &'static str,
    program: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    log_dir: &Path,
) -> anyhow::Result<(Proc, String, Duration)> {
    let log = log_dir.join(format!("{name}.{}.log", std::process::id()));
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(program);
    // `envs` may override the quiet default log level.
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let proc = Proc { name, child, log };
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("listening on ") {
                return Ok::<_, std::io::Error>(Some(rest.trim().to_string()));
            }
        }
        Ok(None)
    })
    .await;
    let elapsed = started.elapsed();
    let addr = match ready {
        Ok(Ok(Some(addr))) => addr,
        Ok(Ok(None)) | Ok(Err(_)) => {
            bail!(
                "{name} exited before it was ready; log:\n{}",
                proc.log_tail()
            )
        }
        Err(_) => bail!(
            "{name} printed no ready line within {} s; log:\n{}",
            READY_TIMEOUT.as_secs(),
            proc.log_tail()
        ),
    };
    // Keep reading stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((proc, addr, elapsed))
}

/// Runs a command to completion with `input` on stdin; returns its stdout.
pub async fn run(program: &Path, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).await?;
        drop(stdin);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| anyhow!("{} {args:?} took over 60 s", program.display()))??;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            program.display(),
            args.first().copied().unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The nginx binary: on PATH, or Debian's `/usr/sbin/nginx`.
pub fn find_nginx() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("nginx not found; install it (bench/run.sh does: apt-get install nginx)")
        })
}

/// Whether this process runs as root (nginx then needs `user root;` so its
/// workers can use the run's private directories).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Starts nginx as a reverse proxy from `127.0.0.1:port` to `upstream`,
/// injecting `Authorization: Bearer <pat>` the way the companion does, and
/// streaming responses. Ready once it accepts connections.
pub async fn start_nginx(dir: &Path, upstream: &str, pat: &str) -> anyhow::Result<(Proc, u16)> {
    let nginx = find_nginx()?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    let port = free_port()?;
    let upstream = url::Url::parse(upstream)?;
    let up_addr = format!(
        "{}:{}",
        upstream.host_str().unwrap_or("127.0.0.1"),
        upstream.port_or_known_default().unwrap_or(80)
    );
    let tmp = dir.join("tmp");
    let tmp = tmp.display();
    let user = if is_root() { "user root;" } else { "" };
    // One worker per core, like the companion's runtime; keepalive to the
    // upstream, no buffering of streamed responses, no access log.
    let conf = format!(
        "{user}
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream spor {{
        server {up_addr};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /mcp {{
            proxy_pass http://spor;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host {up_addr};
            proxy_set_header Authorization \"Bearer {pat}\";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
",
        dir = dir.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = dir.join("nginx.stderr.log");
    let log_file = std::fs::File::create(&log)?;
    let child = Command::new(&nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", nginx.display()))?;
    let mut proc = Proc {
        name: "nginx",
        child,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok((proc, port));
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            bail!("nginx exited with {status}: {}", proc.log_tail());
        }
        if Instant::now() > deadline {
            bail!("nginx did not listen within 10 s: {}", proc.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
