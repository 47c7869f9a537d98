//! What `/proc` says about a process: resident memory, open files and CPU
//! time.

/// Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`,
/// 100 on every Linux this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// A field of `/proc/<pid>/status`, in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Resident memory now, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_kb(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0
}

/// Peak resident memory since start, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_kb(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0
}

/// A process's open descriptors by what they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fds {
    /// All of them.
    pub total: usize,
    /// TCP connections accepted on `port` (clients).
    pub clients: usize,
    /// TCP connections to `upstream_port` (the upstream pool).
    pub upstream: usize,
}

/// `(local port, remote port, state)` by socket inode, from
/// `/proc/<pid>/net/tcp{,6}`.
fn tcp_sockets(pid: u32) -> std::collections::HashMap<u64, (u16, u16, u8)> {
    let mut out = std::collections::HashMap::new();
    for file in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = |a: &str| {
                a.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if let (Some(l), Some(r), Some(st), Some(inode)) = (
                f.get(1).and_then(|a| port(a)),
                f.get(2).and_then(|a| port(a)),
                f.get(3).and_then(|s| u8::from_str_radix(s, 16).ok()),
                f.get(9).and_then(|i| i.parse::<u64>().ok()),
            ) {
                out.insert(inode, (l, r, st));
            }
        }
    }
    out
}

/// Open descriptors of `pid`, telling client connections on `port` and
/// connections to `upstream_port` from the rest.
pub fn fds(pid: u32, port: u16, upstream_port: u16) -> Fds {
    let tcp = tcp_sockets(pid);
    let mut out = Fds::default();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for entry in dir.flatten() {
        out.total += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        // State 0A is LISTEN.
        match tcp.get(&inode) {
            Some(&(l, _, st)) if l == port && st != 0x0A => out.clients += 1,
            Some(&(_, r, _)) if r == upstream_port => out.upstream += 1,
            _ => {}
        }
    }
    out
}

/// `(ppid, utime + stime in ticks)` from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// CPU seconds used so far by `pid` and its direct children (nginx's
/// workers are children of its master).
pub fn cpu_secs(pid: u32) -> f64 {
    let mut ticks = stat(pid).map(|(_, t)| t).unwrap_or(0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((ppid, t)) = stat(child) {
                if ppid == pid {
                    ticks += t;
                }
            }
        }
    }
    ticks as f64 / TICKS_PER_SEC
}

/// A one-line description of the machine: CPU model and count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cpus} CPUs, {mem_gib:.0} GiB RAM, Linux {}",
        kernel.trim()
    )
}
