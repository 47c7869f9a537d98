//! What `/proc` says about a process: resident memory and CPU time.

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
