//! `spor-bench soak`: many simulated hosts, each looping register (now and
//! then) → authorize → Allow → code exchange → MCP session → tool calls →
//! refresh → calls with the new token → disconnect (or walk away; the
//! oldest of a host's walked-away grants is disconnected once it has more
//! than a few), for a bounded time against the real daemon. Fails on any
//! unexpected answer, on resident memory or open descriptors that keep
//! growing after the warm-up, on any secret a client saw appearing in the
//! daemon's log, and on a damaged database.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::dbcheck;
use crate::mcp::Target;
use crate::oauth::{OAuth, Pair};
use crate::rig::Rig;
use crate::stats::median;
use crate::sys;
use crate::tally::Tally;

/// Options of `spor-bench soak`.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Where `spor-companiond` and `spor-sandbox` are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// How long the hosts run, in seconds (the run stops by itself).
    #[arg(long, default_value_t = 120)]
    pub duration: u64,
    /// Simulated hosts, all at once.
    #[arg(long, default_value_t = 16)]
    pub hosts: usize,
    /// Seconds between samples of the daemon's memory and descriptors.
    #[arg(long, default_value_t = 2)]
    pub sample_every: u64,
    /// `RUST_LOG` for the daemon (its log is scanned for secrets).
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Seed of the hosts' choices (printed; random if not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the temp dir (logs, database) after the run.
    #[arg(long)]
    pub keep: bool,
    /// How far the last quarter's median resident memory may lie above the
    /// second quarter's, MiB.
    #[arg(long, default_value_t = RSS_ALLOWANCE_MIB)]
    pub rss_allowance_mib: f64,
}

/// The share of the run before memory and descriptors count.
const WARM_UP: f64 = 0.25;
/// How far the median resident memory of the last quarter may lie above
/// that of the second quarter, by default. What may still fill after the
/// warm-up is bounded: SQLite's page cache (the default 2,000 KiB), the
/// gateway's access-token cache (entries read since the database last
/// changed, at most 4,096 of about 1 KiB each: up to 4 MiB) and the
/// allocator's slack (2 MiB). Anything that grows with the number of
/// connections exceeds it within a 30-minute run.
const RSS_ALLOWANCE_MIB: f64 = 8.0;
/// How long the hosts' connections get to close before descriptors are
/// counted again.
const SETTLE: Duration = Duration::from_secs(3);
/// Failure texts the report keeps.
const KEPT_FAILURES: usize = 20;
/// Grants a host leaves connected (it quit or vanished) before the oldest is
/// disconnected. Memory rightly grows with the number of connected
/// assistants (their sessions and streams are held), so a steady state
/// needs a bounded set of them, as a person tidying up the list keeps it.
const KEPT_GRANTS_PER_HOST: usize = 4;

/// How one host ends a connection.
#[derive(Clone, Copy)]
enum Ending {
    /// `POST /oauth/revoke` with the access token.
    RevokeAccess,
    /// `POST /oauth/revoke` with the refresh token.
    RevokeRefresh,
    /// `spor-companiond grants revoke <id>` (the control socket).
    Cli,
    /// `DELETE` the MCP session; keep the grant (a host that quits).
    Leave,
    /// Just go (a host that crashed): neither session nor grant ended.
    Vanish,
}

impl Ending {
    fn pick(rng: &mut StdRng) -> Self {
        match rng.gen_range(0..100) {
            0..35 => Self::RevokeAccess,
            35..55 => Self::RevokeRefresh,
            55..70 => Self::Cli,
            70..88 => Self::Leave,
            _ => Self::Vanish,
        }
    }
}

/// What one host did, and every secret it saw (the daemon's log is
/// scanned for them).
#[derive(Default)]
struct HostRun {
    tally: Tally,
    secrets: Vec<String>,
}

/// One sample of the daemon.
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    rss_mib: f64,
    fds: sys::Fds,
}

fn port_of(base: &str) -> anyhow::Result<u16> {
    url::Url::parse(base)?
        .port()
        .ok_or_else(|| anyhow!("no port in {base}"))
}

fn ctx_sandbox(rig: &Rig) -> String {
    rig.sandbox_base.clone()
}

struct Ctx {
    rig: Rig,
    base: String,
    end: Instant,
}

/// Runs the soak; the report and what failed.
pub async fn run(args: &SoakArgs) -> anyhow::Result<(String, Vec<String>)> {
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "spor-bench soak: seed {seed} (rerun with --seed {seed}); {} hosts for {} s",
        args.hosts, args.duration
    );
    let rig = Rig::start(&args.bin_dir, "spor-soak-").await?;
    let (companion, base, _) = rig.serve("127.0.0.1:0", &args.log).await?;
    let pid = companion.pid();
    let log_path = companion.log_path().to_path_buf();
    let mut failures = Vec::new();
    let mut secrets = vec![rig.pat.clone()];

    // The idle baseline: started, one grant made and used.
    let first = OAuth::register(&base, &rig.account_id, "soak-baseline").await?;
    let consented = first.consent().await?;
    let pair = first.exchange(&consented.code, &consented.verifier).await?;
    anyhow::ensure!(
        first.accepted(&pair.access).await?,
        "baseline token refused"
    );
    secrets.extend([
        consented.code,
        consented.verifier,
        consented.csrf,
        pair.access,
        pair.refresh,
    ]);
    drop(first);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let port = port_of(&base)?;
    let upstream_port = port_of(&ctx_sandbox(&rig))?;
    let fds_of = move || sys::fds(pid, port, upstream_port);
    let (idle_rss, idle_fds) = (sys::rss_mib(pid), fds_of());

    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        rig,
        base: base.clone(),
        end: started + Duration::from_secs(args.duration),
    });
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, every) = (done.clone(), Duration::from_secs(args.sample_every.max(1)));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            while !done.load(Ordering::SeqCst) {
                tick.tick().await;
                samples.push(Sample {
                    at: started.elapsed().as_secs_f64(),
                    rss_mib: sys::rss_mib(pid),
                    fds: fds_of(),
                });
            }
            samples
        })
    };
    let tasks: Vec<_> = (0..args.hosts)
        .map(|no| {
            let ctx = ctx.clone();
            let rng = StdRng::seed_from_u64(seed ^ (no as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(async move { host(no, &ctx, rng).await })
        })
        .collect();
    let mut tally = Tally::default();
    for t in tasks {
        match t.await {
            Ok(part) => {
                tally.absorb(part.tally, KEPT_FAILURES);
                secrets.extend(part.secrets);
            }
            Err(e) => tally.fail(format!("host task failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let samples = sampler.await?;
    tokio::time::sleep(SETTLE).await;
    let (after_rss, after_fds) = (sys::rss_mib(pid), fds_of());

    if let Err(e) = companion.stop().await {
        failures.push(format!("{e:#}"));
    }
    let mut rig = Arc::try_unwrap(ctx)
        .map_err(|_| anyhow!("a host still holds the rig"))?
        .rig;

    if tally.failed > 0 {
        failures.push(format!(
            "{} unexpected outcomes, e.g.: {}",
            tally.failed,
            tally.failures.join(" | ")
        ));
    }
    let memory = Memory::of(
        &samples,
        args.duration as f64,
        idle_rss,
        idle_fds,
        after_rss,
        after_fds,
    );
    failures.extend(memory.verdicts(args.hosts, args.rss_allowance_mib));
    let log =
        std::fs::read(&log_path).with_context(|| format!("reading {}", log_path.display()))?;
    let scan = scan_log(&log, &secrets);
    failures.extend(scan.verdicts());
    let db = dbcheck::open_read_only(&rig.db_path())?;
    let damage = dbcheck::integrity(&db)?;
    failures.extend(damage);
    let rows = dbcheck::row_counts(&db)?;
    let connections = tally.get("exchange");
    let registrations = tally.get("register");
    // Messages the gateway logs: initialize + initialized per session, the
    // tool calls, the DELETEs.
    let op = |k: &str| tally.get(k);
    let forwarded =
        2 * op("session opened") + op("tools/call") + op("leave: DELETE session, grant kept");
    failures.extend(db_verdicts(
        &rows,
        registrations,
        forwarded as f64 / elapsed.as_secs_f64().max(1.0),
    ));
    let db_bytes = dbcheck::file_bytes(&rig.db_path());
    drop(db);

    if args.keep || !failures.is_empty() {
        eprintln!("spor-bench soak: kept {}", rig.keep().display());
    }
    if let Err(e) = rig.stop().await {
        failures.push(format!("{e:#}"));
    }

    let mut out = String::new();
    let secs = elapsed.as_secs_f64();
    let _ = writeln!(out, "# spor-bench soak\n");
    let _ = writeln!(out, "Machine: {}\n", sys::machine());
    let _ = writeln!(
        out,
        "{} hosts for {:.0} s (seed {seed}); daemon `RUST_LOG={}`.\n",
        args.hosts, secs, args.log
    );
    let _ = writeln!(out, "| operation | count | per second |\n|---|---:|---:|");
    for (op, n) in &tally.counts {
        let _ = writeln!(out, "| {op} | {n} | {:.1} |", *n as f64 / secs.max(1e-9));
    }
    let _ = writeln!(out, "| **unexpected outcomes** | {} | |", tally.failed);
    out.push_str(&memory.render(args.hosts, args.rss_allowance_mib));
    let _ = writeln!(
        out,
        "\nLog: {} bytes, {} lines ({} WARN, {} ERROR); {} secrets looked for ({} too short to look for), {} found.",
        log.len(),
        scan.lines,
        scan.warns,
        scan.errors,
        scan.looked_for,
        scan.too_short,
        scan.hits.len()
    );
    let _ = writeln!(
        out,
        "\nDatabase afterwards ({:.1} MiB with its WAL; {connections} connections, {registrations} registrations):\n",
        db_bytes as f64 / 1048576.0
    );
    let _ = writeln!(
        out,
        "| table | rows | per 1,000 connections |\n|---|---:|---:|"
    );
    for (table, n) in &rows {
        let _ = writeln!(
            out,
            "| {table} | {n} | {:.0} |",
            *n as f64 * 1000.0 / connections.max(1) as f64
        );
    }
    Ok((out, failures))
}

/// One host's loop until the end of the run.
async fn host(no: usize, ctx: &Ctx, mut rng: StdRng) -> HostRun {
    let mut t = HostRun::default();
    let mut client: Option<(OAuth, Instant, Duration)> = None;
    let mut rpc = 1u64;
    let mut kept: VecDeque<Kept> = VecDeque::new();
    while Instant::now() < ctx.end {
        let stale = client
            .as_ref()
            .is_none_or(|(_, at, life)| at.elapsed() > *life);
        if stale {
            match OAuth::register(&ctx.base, &ctx.rig.account_id, &format!("soak host {no}")).await
            {
                Ok(o) => {
                    t.tally.count("register");
                    // A host re-registers about once a minute (a reinstall).
                    let life = Duration::from_secs(rng.gen_range(45..75));
                    client = Some((o, Instant::now(), life));
                }
                Err(e) => {
                    t.tally.fail(format!("register: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let Some((o, _, _)) = client.as_ref() else {
            continue;
        };
        match connection(no, ctx, o, &mut rng, &mut rpc, &mut t).await {
            Ok(Some(k)) => kept.push_back(k),
            Ok(None) => {}
            Err(e) => {
                t.tally.fail(format!("host {no}: {e:#}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if kept.len() > KEPT_GRANTS_PER_HOST {
            if let Some(old) = kept.pop_front() {
                if let Err(e) = retire(old, &mut t).await {
                    t.tally.fail(format!("host {no}: {e:#}"));
                }
            }
        }
        // A little think time, so the hosts interleave differently each loop.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..20))).await;
    }
    t
}

/// A grant a host left connected: its client and latest refresh token.
struct Kept {
    client: OAuth,
    refresh: String,
}

/// Disconnects a grant left connected earlier (revoking its refresh token);
/// the token must then be refused.
async fn retire(k: Kept, t: &mut HostRun) -> anyhow::Result<()> {
    let status = k.client.revoke(&k.refresh).await.context("retire")?;
    anyhow::ensure!(
        status == 200,
        "POST /oauth/revoke of a kept grant answered {status}"
    );
    t.tally.count("retire: a kept grant disconnected");
    match k.client.refresh_answer(&k.refresh).await? {
        Err(r) if r.error == "invalid_grant" => {
            t.tally.count("expected: invalid_grant for a retired grant")
        }
        Err(r) => anyhow::bail!("refresh of a retired grant: {r}"),
        Ok(_) => anyhow::bail!("refresh of a retired grant issued a pair"),
    }
    Ok(())
}

/// One connection of a host, from authorization to its end; what it left
/// connected, if it did.
async fn connection(
    no: usize,
    ctx: &Ctx,
    o: &OAuth,
    rng: &mut StdRng,
    rpc: &mut u64,
    t: &mut HostRun,
) -> anyhow::Result<Option<Kept>> {
    let c = o.consent().await.context("authorize + consent")?;
    t.tally.count("authorize + consent");
    t.secrets
        .extend([c.code.clone(), c.verifier.clone(), c.csrf]);
    let ending = Ending::pick(rng);
    let before = match ending {
        Ending::Cli => Some(live_grants(&ctx.rig, &o.client_id).await?),
        _ => None,
    };
    let pair = o.exchange(&c.code, &c.verifier).await.context("exchange")?;
    t.tally.count("exchange");
    remember(t, &pair);
    let target = Target::new(
        "companion",
        format!("{}/mcp", ctx.base),
        Some(pair.access.clone()),
    )?;
    let session = target.open(no).await.context("initialize")?;
    t.tally.count("session opened");
    t.secrets.push(session.id().to_string());
    for _ in 0..rng.gen_range(2..6) {
        *rpc += 1;
        session.call(*rpc).await.context("tools/call")?;
        t.tally.count("tools/call");
    }
    let next = o.refresh(&pair.refresh).await.context("refresh")?;
    t.tally.count("refresh");
    remember(t, &next);
    let session = session.with_bearer(&next.access);
    for _ in 0..rng.gen_range(2..6) {
        *rpc += 1;
        session
            .call(*rpc)
            .await
            .context("tools/call after refresh")?;
        t.tally.count("tools/call");
    }
    match ending {
        Ending::RevokeAccess | Ending::RevokeRefresh => {
            let token = match ending {
                Ending::RevokeAccess => &next.access,
                _ => &next.refresh,
            };
            let status = o.revoke(token).await.context("revoke")?;
            anyhow::ensure!(status == 200, "POST /oauth/revoke answered {status}");
            t.tally.count("disconnect: POST /oauth/revoke");
        }
        Ending::Cli => {
            let before = before.unwrap_or_default();
            let after = live_grants(&ctx.rig, &o.client_id).await?;
            let new: Vec<&String> = after.difference(&before).collect();
            let [id] = new.as_slice() else {
                anyhow::bail!("expected one new grant for the client, found {}", new.len());
            };
            ctx.rig.cli(&["grants", "revoke", id], None).await?;
            t.tally.count("disconnect: grants revoke");
        }
        Ending::Leave => {
            session.close().await;
            t.tally.count("leave: DELETE session, grant kept");
            return Ok(Some(Kept {
                client: o.clone(),
                refresh: next.refresh.clone(),
            }));
        }
        Ending::Vanish => {
            t.tally.count("vanish: session and grant kept");
            return Ok(Some(Kept {
                client: o.clone(),
                refresh: next.refresh.clone(),
            }));
        }
    }
    // The expected errors: everything of the grant is refused at once.
    *rpc += 1;
    let status = session.call_status(*rpc).await?;
    anyhow::ensure!(
        status == 401,
        "a call after the revocation answered {status}"
    );
    t.tally.count("expected: 401 on the session after revoke");
    let status = o.mcp_status(&pair.access).await?;
    anyhow::ensure!(
        status == 401,
        "the first access token after the revocation: {status}"
    );
    t.tally.count("expected: 401 for the older access token");
    match o.refresh_answer(&next.refresh).await? {
        Err(r) if r.error == "invalid_grant" => t.tally.count("expected: invalid_grant on refresh"),
        Err(r) => anyhow::bail!("refresh after the revocation: {r}"),
        Ok(_) => anyhow::bail!("refresh after the revocation issued a pair"),
    }
    Ok(None)
}

fn remember(t: &mut HostRun, pair: &Pair) {
    t.secrets
        .extend([pair.access.clone(), pair.refresh.clone()]);
}

/// Ids of the live grants of one client, from `grants list --json`.
async fn live_grants(rig: &Rig, client_id: &str) -> anyhow::Result<HashSet<String>> {
    let list: Value = serde_json::from_str(&rig.cli(&["grants", "list", "--json"], None).await?)?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["client_id"] == client_id)
        .filter_map(|g| g["id"].as_str().map(str::to_string))
        .collect())
}

/// The daemon's memory and descriptors over the run.
struct Memory {
    idle_rss: f64,
    idle_fds: sys::Fds,
    q2_rss: f64,
    q4_rss: f64,
    max_rss: f64,
    slope_mib_per_hour: f64,
    q2_fds: f64,
    q4_fds: f64,
    max_fds: usize,
    max_upstream: usize,
    after_rss: f64,
    after_fds: sys::Fds,
    samples: usize,
}

impl Memory {
    fn of(
        samples: &[Sample],
        duration: f64,
        idle_rss: f64,
        idle_fds: sys::Fds,
        after_rss: f64,
        after_fds: sys::Fds,
    ) -> Self {
        let within = |lo: f64, hi: f64| -> Vec<Sample> {
            samples
                .iter()
                .filter(|s| s.at >= lo * duration && s.at < hi * duration)
                .copied()
                .collect()
        };
        let (q2, q4) = (within(WARM_UP, 0.5), within(0.75, 1.01));
        let after_warm = within(WARM_UP, 1.01);
        let rss = |v: &[Sample]| median(v.iter().map(|s| s.rss_mib).collect());
        let fds = |v: &[Sample]| median(v.iter().map(|s| s.fds.total as f64).collect());
        Memory {
            idle_rss,
            idle_fds,
            q2_rss: rss(&q2),
            q4_rss: rss(&q4),
            max_rss: samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
            slope_mib_per_hour: slope(&after_warm) * 3600.0,
            q2_fds: fds(&q2),
            q4_fds: fds(&q4),
            max_fds: after_warm.iter().map(|s| s.fds.total).max().unwrap_or(0),
            max_upstream: samples.iter().map(|s| s.fds.upstream).max().unwrap_or(0),
            after_rss,
            after_fds,
            samples: samples.len(),
        }
    }

    /// Flat means: the last quarter's median resident memory within
    /// [`RSS_ALLOWANCE_MIB`] of the second quarter's; under load, never more
    /// descriptors than the idle count plus five per host (two client
    /// connections — its OAuth client's and its MCP client's —, two upstream
    /// connections — a pooled connection returns to the pool only once the
    /// relayed answer is finished, so a host's next call may need a second
    /// —, one control connection); after the hosts closed: no client
    /// connection left, at most two upstream connections per host (the pool
    /// keeps idle ones for 90 s), every other descriptor back to its idle
    /// count (+4).
    fn verdicts(&self, hosts: usize, allowance: f64) -> Vec<String> {
        let mut v = Vec::new();
        if self.samples < 8 {
            v.push(format!("only {} samples; run longer", self.samples));
            return v;
        }
        if self.q4_rss > self.q2_rss + allowance {
            v.push(format!(
                "resident memory grew: median {:.1} MiB in the last quarter against {:.1} MiB in the second (allowed +{allowance} MiB)",
                self.q4_rss, self.q2_rss
            ));
        }
        if self.max_fds > self.idle_fds.total + 5 * hosts + 8 {
            v.push(format!(
                "open descriptors under load reached {} (idle {}, allowed idle + {})",
                self.max_fds,
                self.idle_fds.total,
                5 * hosts + 8
            ));
        }
        let a = self.after_fds;
        if a.clients > 0 {
            v.push(format!(
                "{} client connections still open after the hosts left",
                a.clients
            ));
        }
        if a.upstream > 2 * hosts + 4 {
            v.push(format!(
                "{} upstream connections kept after the load (at most two per host + 4 expected)",
                a.upstream
            ));
        }
        if other(a) > other(self.idle_fds) + 4 {
            v.push(format!(
                "{} descriptors besides connections after the hosts left, {} when idle",
                other(a),
                other(self.idle_fds)
            ));
        }
        v
    }

    fn render(&self, hosts: usize, allowance: f64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n| the daemon | resident MiB | open fds |\n|---|---:|---:|"
        );
        let _ = writeln!(
            out,
            "| idle, before the load | {:.1} | {} |",
            self.idle_rss,
            show(self.idle_fds)
        );
        let _ = writeln!(
            out,
            "| median, 2nd quarter (after the {:.0}% warm-up) | {:.1} | {:.0} |",
            WARM_UP * 100.0,
            self.q2_rss,
            self.q2_fds
        );
        let _ = writeln!(
            out,
            "| median, last quarter | {:.1} | {:.0} |",
            self.q4_rss, self.q4_fds
        );
        let _ = writeln!(
            out,
            "| max after the warm-up | {:.1} | {} |",
            self.max_rss, self.max_fds
        );
        let _ = writeln!(
            out,
            "| {:.0} s after the hosts left | {:.1} | {} |",
            SETTLE.as_secs_f64(),
            self.after_rss,
            show(self.after_fds)
        );
        let _ = writeln!(
            out,
            "\n{} samples; least-squares trend after the warm-up {:+.2} MiB/hour. Limits: last-quarter median ≤ second-quarter median + {allowance} MiB; fds under load ≤ idle + {}; after the hosts left: no client connection, ≤ {} upstream connections (the pool's idle ones), other fds ≤ idle + 4. Peak upstream connections: {}.",
            self.samples,
            self.slope_mib_per_hour,
            5 * hosts + 8,
            2 * hosts + 4,
            self.max_upstream
        );
        out
    }
}

/// Descriptors that are neither client nor upstream connections.
fn other(f: sys::Fds) -> usize {
    f.total - f.clients - f.upstream
}

fn show(f: sys::Fds) -> String {
    format!(
        "{} ({} client, {} upstream connections)",
        f.total, f.clients, f.upstream
    )
}

/// Least-squares slope of RSS over time, MiB per second.
fn slope(s: &[Sample]) -> f64 {
    let n = s.len() as f64;
    if s.len() < 2 {
        return 0.0;
    }
    let mx = s.iter().map(|x| x.at).sum::<f64>() / n;
    let my = s.iter().map(|x| x.rss_mib).sum::<f64>() / n;
    let num: f64 = s.iter().map(|x| (x.at - mx) * (x.rss_mib - my)).sum();
    let den: f64 = s.iter().map(|x| (x.at - mx).powi(2)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Every secret's tail of this many characters is looked for.
const FINGERPRINT: usize = 16;

/// What the log scan found.
struct Scan {
    lines: usize,
    warns: usize,
    errors: usize,
    panics: usize,
    looked_for: usize,
    too_short: usize,
    /// Lines (secret masked) where a secret, or a token prefix, appeared.
    hits: Vec<String>,
    /// The first few WARN/ERROR lines.
    notable: Vec<String>,
}

/// Looks for every secret in the log: the last [`FINGERPRINT`] characters
/// of each (random, so a chance match is impossible) at every position, and
/// the token prefixes anywhere.
fn scan_log(log: &[u8], secrets: &[String]) -> Scan {
    let mut prints: HashSet<&[u8]> = HashSet::new();
    let mut too_short = 0;
    for s in secrets {
        let b = s.as_bytes();
        if b.len() < FINGERPRINT {
            too_short += 1;
        } else {
            prints.insert(&b[b.len() - FINGERPRINT..]);
        }
    }
    let text = String::from_utf8_lossy(log);
    let mut scan = Scan {
        lines: 0,
        warns: 0,
        errors: 0,
        panics: 0,
        looked_for: prints.len(),
        too_short,
        hits: Vec::new(),
        notable: Vec::new(),
    };
    for line in text.lines() {
        scan.lines += 1;
        let level_warn = line.contains(" WARN ");
        let level_error = line.contains(" ERROR ");
        scan.warns += usize::from(level_warn);
        scan.errors += usize::from(level_error);
        if line.contains("panicked") {
            scan.panics += 1;
        }
        if (level_warn || level_error || line.contains("panicked")) && scan.notable.len() < 5 {
            scan.notable.push(line.chars().take(300).collect());
        }
        let b = line.as_bytes();
        let mut hit = ["spor_pat_", "spor_oat_", "spor_ort_"]
            .iter()
            .any(|p| line.contains(p));
        if !hit && b.len() >= FINGERPRINT {
            hit = (0..=b.len() - FINGERPRINT).any(|i| prints.contains(&b[i..i + FINGERPRINT]));
        }
        if hit && scan.hits.len() < 5 {
            // Show where, never what.
            scan.hits.push(format!(
                "line {}: {}…",
                scan.lines,
                line.chars().take(60).collect::<String>()
            ));
        }
    }
    scan
}

impl Scan {
    fn verdicts(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.hits.is_empty() {
            v.push(format!(
                "secrets in the daemon's log: {}",
                self.hits.join(" | ")
            ));
        }
        if self.errors > 0 || self.panics > 0 {
            v.push(format!(
                "{} ERROR lines and {} panics in the daemon's log: {}",
                self.errors,
                self.panics,
                self.notable.join(" | ")
            ));
        }
        v
    }
}

/// What the database must respect after a soak: the capped tables within
/// their caps.
fn db_verdicts(rows: &[(String, i64)], registrations: u64, calls_per_sec: f64) -> Vec<String> {
    let get = |t: &str| {
        rows.iter()
            .find(|(n, _)| n == t)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    };
    let mut v = Vec::new();
    // Every registration of the run plus the baseline's.
    if get("clients") as u64 > registrations + 1 {
        v.push(format!(
            "{} clients stored after {} registrations",
            get("clients"),
            registrations + 1
        ));
    }
    // The cap is enforced by the pruning every 600 s, so up to 600 s of
    // calls may lie above it.
    let allowed = crate::dbcheck::MAX_CALLS_KEPT + (calls_per_sec * 600.0).ceil() as i64;
    if get("mcp_calls") > allowed {
        v.push(format!(
            "{} call records, above the cap plus one pruning interval ({allowed})",
            get("mcp_calls")
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_scan_finds_a_secret_anywhere_in_a_line() {
        let secret = "Zq3xV9kL0pWm2Rt7Yb4Nc8Hd1Fs6Gj5E".to_string();
        let log = format!("2026 INFO request path=/x?code={secret}&state=1\nok line\n");
        let scan = scan_log(log.as_bytes(), std::slice::from_ref(&secret));
        assert_eq!(scan.hits.len(), 1);
        assert!(!scan.hits[0].contains(&secret[secret.len() - FINGERPRINT..]));
        let clean = scan_log(b"INFO nothing here\n", &[secret]);
        assert!(clean.hits.is_empty());
        assert_eq!(clean.lines, 1);
    }

    #[test]
    fn a_token_prefix_in_the_log_is_a_hit_even_if_unseen() {
        let scan = scan_log(b"2026-11-22T06:00:00Z  WARN bearer spor_oat_abc\n", &[]);
        assert_eq!(scan.hits.len(), 1);
        assert_eq!(scan.warns, 1);
    }

    #[test]
    fn slope_of_a_line() {
        let s: Vec<Sample> = (0..10)
            .map(|i| Sample {
                at: i as f64,
                rss_mib: 2.0 * i as f64 + 1.0,
                fds: sys::Fds::default(),
            })
            .collect();
        assert!((slope(&s) - 2.0).abs() < 1e-9);
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
