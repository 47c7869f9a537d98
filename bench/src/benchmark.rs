//! The benchmark: the same MCP workload against the upstream directly,
//! through nginx and through the companion, interleaved so that machine
//! drift hits all three alike; then the token endpoint. Renders Markdown
//! tables; every failed call or check is returned as a failure.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::bail;
use serde_json::Value;

use crate::mcp::{self, Chunk, Session, Target};
use crate::oauth::{self, OAuth, TokenRun};
use crate::procs;
use crate::rig::Rig;
use crate::stats::Summary;
use crate::sys;
use crate::BenchArgs as Args;

/// Targets in report order.
const TARGETS: [&str; 3] = ["direct", "nginx", "companion"];

/// Everything one concurrency level measured.
struct Level {
    concurrency: usize,
    /// Per target, in [`TARGETS`] order.
    results: Vec<Summary>,
    samples: Vec<String>,
    /// Proxy CPU seconds per 1,000 calls (nginx, companion).
    cpu_per_k: [f64; 2],
}

pub async fn run(args: &Args) -> anyhow::Result<(String, Vec<String>)> {
    let rig = Rig::start(&args.bin_dir, "spor-bench-").await?;
    let mut failures = Vec::new();

    eprintln!("spor-bench: timing {} companion starts", args.starts);
    let mut startups = Vec::new();
    for _ in 0..args.starts {
        let (p, _, took) = rig.serve("127.0.0.1:0", "warn").await?;
        startups.push(took);
        p.stop().await?;
    }
    startups.sort();

    let (companion, base, _) = rig.serve("127.0.0.1:0", "warn").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = sys::rss_mib(companion.pid());

    let oauth = OAuth::register(&base, &rig.account_id, "spor-bench").await?;
    let pair = oauth.grant().await?;

    let (nginx, nginx_port) =
        procs::start_nginx(&rig.root().join("nginx"), &rig.sandbox_base, &rig.pat).await?;
    let targets = [
        Target::new(
            TARGETS[0],
            format!("{}/mcp", rig.sandbox_base),
            Some(rig.pat.clone()),
        )?,
        Target::new(
            TARGETS[1],
            format!("http://127.0.0.1:{nginx_port}/mcp"),
            None,
        )?,
        Target::new(TARGETS[2], format!("{base}/mcp"), Some(pair.access.clone()))?,
    ];
    let pids = [0, nginx.pid(), companion.pid()];

    let mut levels = Vec::new();
    for &c in &args.concurrency {
        eprintln!(
            "spor-bench: {} calls per target at concurrency {c}",
            args.calls
        );
        let level = run_level(args, &targets, &pids, c).await?;
        for (t, s) in TARGETS.iter().zip(&level.results) {
            if s.errors > 0 {
                failures.push(format!(
                    "{t} at concurrency {c}: {} failed calls ({})",
                    s.errors,
                    level.samples.join("; ")
                ));
            }
        }
        levels.push(level);
    }
    let after_rss = sys::rss_mib(companion.pid());
    let peak_rss = sys::peak_rss_mib(companion.pid());

    eprintln!("spor-bench: token endpoint");
    let mut token_runs = Vec::new();
    for c in [1, 32] {
        token_runs.push(oauth::bench_exchanges(&oauth, args.exchanges, c).await?);
    }
    let mut finals = Vec::new();
    for (c, per_grant) in [(1, args.rotations), (32, args.rotations.div_ceil(32))] {
        let (run, last) = oauth::bench_rotations(&oauth, c, per_grant).await?;
        token_runs.push(run);
        finals.extend(last);
    }
    for r in &token_runs {
        if r.errors > 0 || r.unusable > 0 {
            failures.push(format!(
                "{} at concurrency {}: {} errors, {} unusable pairs",
                r.op, r.concurrency, r.errors, r.unusable
            ));
        }
    }
    // Every rotated grant must still rotate, and none may have been revoked.
    let mut final_refresh_failures = 0;
    for p in &finals {
        if oauth.refresh(&p.refresh).await.is_err() {
            final_refresh_failures += 1;
        }
    }
    let grants: Value = serde_json::from_str(
        &rig.cli(&["grants", "list", "--json", "--all"], None)
            .await?,
    )?;
    let ours: Vec<&Value> = grants
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|g| g["client_id"] == oauth.client_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let expected = 1 + 2 * args.exchanges + 1 + 32;
    let revoked = ours.iter().filter(|g| !g["revoked_at"].is_null()).count();
    if ours.len() != expected || revoked > 0 || final_refresh_failures > 0 {
        failures.push(format!(
            "grants: {} expected, {} found, {revoked} revoked, {final_refresh_failures} final refreshes failed",
            expected,
            ours.len()
        ));
    }

    for s in [companion.stop(), nginx.stop()] {
        if let Err(e) = s.await {
            failures.push(format!("{e:#}"));
        }
    }
    if let Err(e) = rig.stop().await {
        failures.push(format!("{e:#}"));
    }

    let report = render(
        args,
        &levels,
        &token_runs,
        Resources {
            idle_rss,
            peak_rss,
            after_rss,
            startups,
        },
        GrantCheck {
            expected,
            found: ours.len(),
            revoked,
            final_refresh_failures,
        },
    );
    Ok((report, failures))
}

/// Opens `c` sessions per target, warms up, then runs the timed calls in
/// rounds, rotating which target goes first.
async fn run_level(
    args: &Args,
    targets: &[Target; 3],
    pids: &[u32; 3],
    c: usize,
) -> anyhow::Result<Level> {
    let mut sessions: Vec<Vec<Session>> = Vec::new();
    for t in targets {
        let mut opened = Vec::with_capacity(c);
        for i in 0..c {
            opened.push(t.open(i).await?);
        }
        sessions.push(opened);
    }
    for s in &sessions {
        warm_up(s, (c * 4).max(40)).await?;
    }
    let mut totals: Vec<Chunk> = (0..3).map(|_| Chunk::default()).collect();
    let mut cpu = [0.0f64; 3];
    let per_round = args.calls.div_ceil(args.rounds);
    let mut next_id = 1_000_000u64;
    for round in 0..args.rounds {
        for k in 0..3 {
            let t = (round + k) % 3;
            let before = (pids[t] != 0).then(|| sys::cpu_secs(pids[t]));
            let chunk = mcp::run_chunk(&sessions[t], per_round, next_id).await;
            if let Some(b) = before {
                cpu[t] += sys::cpu_secs(pids[t]) - b;
            }
            next_id += per_round as u64;
            totals[t].absorb(chunk);
        }
    }
    for s in sessions.iter().flatten() {
        s.close().await;
    }
    let mut samples = Vec::new();
    let results = totals
        .iter_mut()
        .map(|t| {
            samples.extend(t.samples.iter().cloned());
            Summary::of(t)
        })
        .collect::<Vec<_>>();
    let per_k = |t: usize| {
        let calls = results[t].ok + results[t].errors;
        if calls == 0 {
            0.0
        } else {
            cpu[t] / calls as f64 * 1000.0
        }
    };
    Ok(Level {
        concurrency: c,
        cpu_per_k: [per_k(1), per_k(2)],
        results,
        samples,
    })
}

/// Untimed calls before the measured ones; any failure ends the run (a
/// target that cannot answer at all is a setup problem, not a measurement).
async fn warm_up(sessions: &[Session], calls: usize) -> anyhow::Result<()> {
    let chunk = mcp::run_chunk(sessions, calls, 1).await;
    if chunk.errors > 0 {
        bail!("warm-up failed: {}", chunk.samples.join("; "));
    }
    Ok(())
}

struct Resources {
    idle_rss: f64,
    peak_rss: f64,
    after_rss: f64,
    startups: Vec<Duration>,
}

struct GrantCheck {
    expected: usize,
    found: usize,
    revoked: usize,
    final_refresh_failures: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn render(
    args: &Args,
    levels: &[Level],
    tokens: &[TokenRun],
    res: Resources,
    grants: GrantCheck,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# spor-bench{}\n",
        if args.smoke { " (smoke)" } else { "" }
    );
    let _ = writeln!(out, "Machine: {}\n", sys::machine());
    let _ = writeln!(
        out,
        "## MCP tool calls\n\n{} timed `tools/call` round trips per target and concurrency, \
         in {} interleaved rounds, after a warm-up; each answer checked.\n",
        args.calls, args.rounds
    );
    let _ = writeln!(
        out,
        "| concurrency | target | calls/s | p50 ms | p99 ms | p99.9 ms | errors | proxy CPU s / 1k calls |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for l in levels {
        for (i, (t, s)) in TARGETS.iter().zip(&l.results).enumerate() {
            let cpu = match i {
                0 => "–".to_string(),
                _ => format!("{:.3}", l.cpu_per_k[i - 1]),
            };
            let _ = writeln!(
                out,
                "| {} | {t} | {:.0} | {:.3} | {:.3} | {:.3} | {} | {cpu} |",
                l.concurrency, s.rps, s.p50, s.p99, s.p999, s.errors
            );
        }
    }
    let _ = writeln!(
        out,
        "\n| concurrency | companion / direct calls/s | companion / nginx calls/s | p50 added by companion ms | p50 added by nginx ms |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
    for l in levels {
        let [d, n, c] = [&l.results[0], &l.results[1], &l.results[2]];
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2} | {:+.3} | {:+.3} |",
            l.concurrency,
            c.rps / d.rps,
            c.rps / n.rps,
            c.p50 - d.p50,
            n.p50 - d.p50
        );
    }
    let median = res
        .startups
        .get(res.startups.len() / 2)
        .copied()
        .unwrap_or_default();
    let max = res.startups.last().copied().unwrap_or_default();
    let _ = writeln!(out, "\n## The companion process\n");
    let _ = writeln!(out, "| measure | value |\n|---|---:|");
    let _ = writeln!(
        out,
        "| resident memory, idle (after start-up and one grant) | {:.1} MiB |",
        res.idle_rss
    );
    let _ = writeln!(
        out,
        "| resident memory, peak under load | {:.1} MiB |",
        res.peak_rss
    );
    let _ = writeln!(
        out,
        "| resident memory, after the load | {:.1} MiB |",
        res.after_rss
    );
    let _ = writeln!(
        out,
        "| start-up to the ready line, median / max of {} | {:.1} / {:.1} ms |",
        res.startups.len(),
        ms(median),
        ms(max)
    );
    let total_cpu: f64 =
        levels.iter().map(|l| l.cpu_per_k[1]).sum::<f64>() / levels.len().max(1) as f64;
    let _ = writeln!(
        out,
        "| CPU s per 1,000 calls (mean over the levels) | {total_cpu:.3} |"
    );

    let _ = writeln!(out, "\n## Token endpoint\n");
    let _ = writeln!(
        out,
        "| operation | concurrency | done | per second | errors | unusable pairs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for r in tokens {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} |",
            r.op,
            r.concurrency,
            r.done,
            r.done as f64 / r.elapsed.as_secs_f64().max(1e-9),
            r.errors,
            r.unusable
        );
    }
    let _ = writeln!(
        out,
        "\nGrants afterwards: {} expected, {} found, {} revoked; {} of the rotated grants failed one more refresh.",
        grants.expected, grants.found, grants.revoked, grants.final_refresh_failures
    );
    out
}
