//! `spor-bench crash`: the companion is killed with SIGKILL in the middle of
//! a load of registrations, authorizations, code exchanges, refresh
//! rotations, token uses and revocations, at a seeded random moment, then
//! restarted on the same data dir and port, several times. After each kill:
//!
//! - the crash image (database and WAL as the dead process left them,
//!   checked on a copy) passes `integrity_check` and `foreign_key_check`,
//!   keeps every invariant of a committed transaction (no grant without its
//!   tokens, no rotation half done, no used code without its grant, …) and
//!   holds everything any client received in full: clients, codes, tokens,
//!   grants in the state their client believes;
//! - after the restart, within the 30 s grace window of a raced refresh:
//!   every grant's latest refresh token refreshes — including one whose
//!   refresh was in flight at the kill (if it committed, the replay returns
//!   the successor the client never saw; if not, it rotates); an exchange
//!   in flight either issues a grant or answers `invalid_grant` (it had
//!   committed; the grant nobody received is revoked); a code received and
//!   not yet presented exchanges; a revocation in flight is sent again;
//!   every access token received is accepted by `/mcp` and every revoked
//!   grant's tokens are refused.
//!
//! At the end the daemon is stopped and the real file is checked the same
//! way, and every grant in it must be one a client holds or one revoked as
//! minted by a lost exchange.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dbcheck;
use crate::ledger::{self, Grant, HeldCode, Host, Revocation};
use crate::oauth::OAuth;
use crate::procs;
use crate::rig::Rig;
use crate::sys;
use crate::tally::Tally;

/// Options of `spor-bench crash`.
#[derive(clap::Args, Debug)]
pub struct CrashArgs {
    /// Where `spor-companiond` and `spor-sandbox` are.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 5)]
    pub cycles: usize,
    /// Simulated hosts, each with its own clients and grants.
    #[arg(long, default_value_t = 16)]
    pub hosts: usize,
    /// Seed of the kill moments and the hosts' choices (printed; random if
    /// not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Earliest kill, in ms after the load starts.
    #[arg(long, default_value_t = 150)]
    pub min_kill_ms: u64,
    /// Latest kill, in ms after the load starts.
    #[arg(long, default_value_t = 1500)]
    pub max_kill_ms: u64,
    /// Keep the temp dir (database, crash images, logs) after the run.
    #[arg(long)]
    pub keep: bool,
}

/// A host revokes one of its grants more often once it holds this many.
const MANY_LIVE: usize = 6;
/// At most this many codes are held back at once.
const MAX_HELD: usize = 3;
/// Failure texts a cycle's report keeps.
const KEPT_FAILURES: usize = 10;

#[derive(Clone, Copy, Debug)]
enum Op {
    Register,
    Connect,
    HoldCode,
    ExchangeHeld,
    Refresh,
    Use,
    Revoke,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Connect => "authorize + exchange",
            Op::HoldCode => "authorize, code held",
            Op::ExchangeHeld => "exchange a held code",
            Op::Refresh => "refresh",
            Op::Use => "use on /mcp",
            Op::Revoke => "revoke",
        }
    }

    fn pick(h: &mut Host) -> Op {
        if h.clients.is_empty() {
            return Op::Register;
        }
        let live = h.live().len();
        let unsent = h.codes.iter().filter(|k| !k.sent).count();
        let r = h.rng.gen_range(0..100);
        if r < 4 && !h.registered_this_cycle {
            return Op::Register;
        }
        if live >= MANY_LIVE && r < 50 {
            return Op::Revoke;
        }
        let op = match r {
            0..30 => Op::Connect,
            30..36 if unsent < MAX_HELD => Op::HoldCode,
            30..42 if unsent > 0 => Op::ExchangeHeld,
            42..75 => Op::Refresh,
            75..88 => Op::Use,
            88..100 if live >= 2 => Op::Revoke,
            _ => Op::Refresh,
        };
        match op {
            Op::Refresh | Op::Use | Op::Revoke if live == 0 => Op::Connect,
            op => op,
        }
    }
}

/// Runs the cycles; the report and what failed.
pub async fn run(args: &CrashArgs) -> anyhow::Result<(String, Vec<String>)> {
    anyhow::ensure!(
        args.min_kill_ms <= args.max_kill_ms,
        "--min-kill-ms above --max-kill-ms"
    );
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "spor-bench crash: seed {seed} (rerun with --seed {seed}); {} cycles, {} hosts",
        args.cycles, args.hosts
    );
    let mut rig = Rig::start(&args.bin_dir, "spor-crash-").await?;
    let listen = format!("127.0.0.1:{}", procs::free_port()?);
    let (mut companion, base, _) = rig.serve(&listen, "warn").await?;
    let mut master = StdRng::seed_from_u64(seed);
    let mut hosts: Vec<Host> = (0..args.hosts)
        .map(|no| {
            Host::new(
                no,
                StdRng::seed_from_u64(seed ^ (no as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            )
        })
        .collect();
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    let started = Instant::now();

    for cycle in 1..=args.cycles {
        let kill_after =
            Duration::from_millis(master.gen_range(args.min_kill_ms..=args.max_kill_ms));
        let killed = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = hosts
            .drain(..)
            .map(|mut h| {
                let (killed, base, account) =
                    (killed.clone(), base.clone(), rig.account_id.clone());
                h.registered_this_cycle = false;
                tokio::spawn(async move {
                    let t = load(&mut h, &base, &account, &killed).await;
                    (h, t)
                })
            })
            .collect();
        tokio::time::sleep(kill_after).await;
        killed.store(true, Ordering::SeqCst);
        let rss = sys::rss_mib(companion.pid());
        companion.kill9().await?;
        let mut before = Tally::default();
        for t in tasks {
            let (h, t) = t.await?;
            hosts.push(h);
            before.absorb(t, KEPT_FAILURES);
        }

        let image_dir = rig.root().join(format!("crash-image-{cycle}"));
        let image = dbcheck::open_crash_image(&rig.db_path(), &image_dir)?;
        let mut problems = dbcheck::integrity(&image)?;
        problems.extend(dbcheck::invariants(&image)?);
        problems.extend(dbcheck::seen(&image, &ledger::seen(&hosts, false))?);
        drop(image);
        if problems.is_empty() && !args.keep {
            let _ = std::fs::remove_dir_all(&image_dir);
        }

        let (restarted, again, _) = rig.serve(&listen, "warn").await?;
        anyhow::ensure!(again == base, "restarted at {again}, not {base}");
        companion = restarted;
        let restarted_at = Instant::now();
        for h in &mut hosts {
            h.clients = h
                .clients
                .iter()
                .map(OAuth::reconnect)
                .collect::<anyhow::Result<_>>()?;
        }
        let tasks: Vec<_> = hosts
            .drain(..)
            .map(|mut h| {
                tokio::spawn(async move {
                    let t = verify(&mut h).await;
                    (h, t)
                })
            })
            .collect();
        let mut after = Tally::default();
        for t in tasks {
            let (h, t) = t.await?;
            hosts.push(h);
            after.absorb(t, KEPT_FAILURES);
        }
        let verify_secs = restarted_at.elapsed().as_secs_f64();
        for f in before
            .failures
            .iter()
            .map(|f| format!("before the kill: {f}"))
        {
            failures.push(format!("cycle {cycle}: {f}"));
        }
        for f in after
            .failures
            .iter()
            .map(|f| format!("after the restart: {f}"))
        {
            failures.push(format!("cycle {cycle}: {f}"));
        }
        for p in &problems {
            failures.push(format!("cycle {cycle}: crash image: {p}"));
        }
        let row = Row {
            cycle,
            kill_ms: kill_after.as_millis() as u64,
            rss,
            before,
            after,
            problems: problems.len(),
            verify_secs,
        };
        eprintln!("spor-bench crash: {}", row.line());
        rows.push(row);
    }

    companion.stop().await?;
    let db = dbcheck::open_read_only(&rig.db_path())?;
    let mut last = dbcheck::integrity(&db)?;
    last.extend(dbcheck::invariants(&db)?);
    last.extend(dbcheck::seen(&db, &ledger::seen(&hosts, true))?);
    let tables = dbcheck::row_counts(&db)?;
    drop(db);
    failures.extend(last.iter().map(|p| format!("final database: {p}")));
    if args.keep || !failures.is_empty() {
        eprintln!("spor-bench crash: kept {}", rig.keep().display());
    }
    if let Err(e) = rig.stop().await {
        failures.push(format!("{e:#}"));
    }

    let grants: usize = hosts.iter().map(|h| h.grants.len()).sum();
    let live: usize = hosts.iter().map(|h| h.live().len()).sum();
    let mut out = String::new();
    let _ = writeln!(out, "# spor-bench crash\n");
    let _ = writeln!(out, "Machine: {}\n", sys::machine());
    let _ = writeln!(
        out,
        "{} cycles of SIGKILL under load and restart, {} hosts, seed {seed} (`--seed {seed}` repeats the kill moments and the hosts' choices); {:.0} s in all.\n",
        args.cycles,
        args.hosts,
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "{}", Row::header());
    for r in &rows {
        let _ = writeln!(out, "{}", r.markdown());
    }
    let _ = writeln!(
        out,
        "\nAt the end: {grants} grants received by the clients, {live} still live; the stopped database: {} ({}).",
        if last.is_empty() { "integrity ok, no foreign-key violation, every invariant and every received token in place" } else { "PROBLEMS" },
        tables
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((out, failures))
}

/// One cycle's line in the report.
struct Row {
    cycle: usize,
    kill_ms: u64,
    rss: f64,
    before: Tally,
    after: Tally,
    problems: usize,
    verify_secs: f64,
}

impl Row {
    fn header() -> &'static str {
        "| cycle | killed at ms | answered before | unanswered at the kill | in-flight refreshes → refreshed | in-flight exchanges → issued / refused as used | held codes exchanged | revocations resent | grants refreshed | access tokens accepted | revoked grants refused | crash-image problems | failures |\n|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    fn unanswered(&self) -> String {
        let parts: Vec<String> = self
            .before
            .counts
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("unanswered: ").map(|k| format!("{k} {v}")))
            .collect();
        if parts.is_empty() {
            "–".into()
        } else {
            parts.join(", ")
        }
    }

    fn markdown(&self) -> String {
        let answered: u64 = self
            .before
            .counts
            .iter()
            .filter(|(k, _)| !k.starts_with("unanswered: "))
            .map(|(_, v)| v)
            .sum();
        let a = &self.after;
        format!(
            "| {} | {} | {answered} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} |",
            self.cycle,
            self.kill_ms,
            self.unanswered(),
            a.get("in-flight refresh refreshed"),
            a.get("in-flight exchange issued"),
            a.get("in-flight exchange refused as used"),
            a.get("held code exchanged"),
            a.get("revocation resent"),
            a.get("grant refreshed"),
            a.get("access token accepted"),
            a.get("revoked grant refused"),
            self.problems,
            self.before.failed + a.failed
        )
    }

    fn line(&self) -> String {
        format!(
            "cycle {}: killed at {} ms (RSS {:.1} MiB), unanswered: {}; after the restart ({:.1} s of checks): {} grants refreshed, {} access tokens accepted; {} crash-image problems, {} failures",
            self.cycle,
            self.kill_ms,
            self.rss,
            self.unanswered(),
            self.verify_secs,
            self.after.get("grant refreshed") + self.after.get("in-flight refresh refreshed"),
            self.after.get("access token accepted"),
            self.problems,
            self.before.failed + self.after.failed
        )
    }
}

/// A host's load until the kill: every answer received is recorded; the
/// first request without an answer after the kill ends it.
async fn load(h: &mut Host, base: &str, account: &str, killed: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    while !killed.load(Ordering::SeqCst) {
        let op = Op::pick(h);
        match step(h, op, base, account, &mut t).await {
            Ok(()) => t.count(op.name()),
            Err(e) if killed.load(Ordering::SeqCst) => {
                t.count(unanswered(op));
                let _ = e;
                break;
            }
            Err(e) => t.fail(format!(
                "host {}: {}: no answer while the daemon was up: {e:#}",
                h.no,
                op.name()
            )),
        }
    }
    t
}

fn unanswered(op: Op) -> &'static str {
    match op {
        Op::Register => "unanswered: register",
        Op::Connect | Op::ExchangeHeld => "unanswered: authorize/exchange",
        Op::HoldCode => "unanswered: authorize",
        Op::Refresh => "unanswered: refresh",
        Op::Use => "unanswered: use",
        Op::Revoke => "unanswered: revoke",
    }
}

/// One operation. `Err` means an answer did not arrive; refused requests
/// are failures recorded in `t` (nothing is refused in this workload).
async fn step(
    h: &mut Host,
    op: Op,
    base: &str,
    account: &str,
    t: &mut Tally,
) -> anyhow::Result<()> {
    let no = h.no;
    match op {
        Op::Register => {
            let o = OAuth::register(base, account, &format!("crash host {no}")).await?;
            h.clients.push(o);
            h.registered_this_cycle = true;
        }
        Op::Connect | Op::HoldCode => {
            let client = h.rng.gen_range(0..h.clients.len());
            let c = h.clients[client].consent().await?;
            h.codes.push(HeldCode {
                client,
                code: c.code,
                verifier: c.verifier,
                sent: false,
            });
            if matches!(op, Op::Connect) {
                exchange(h, h.codes.len() - 1, t).await?;
            }
        }
        Op::ExchangeHeld => {
            if let Some(k) = h.codes.iter().position(|k| !k.sent) {
                exchange(h, k, t).await?;
            }
        }
        Op::Refresh => {
            let live = h.live();
            let g = live[h.rng.gen_range(0..live.len())];
            let grant = &mut h.grants[g];
            grant.refresh_unanswered = true;
            let answer = h.clients[grant.client]
                .refresh_answer(grant.latest_refresh())
                .await?;
            grant.refresh_unanswered = false;
            match answer {
                Ok(pair) => grant.push(pair),
                Err(r) => t.fail(format!("host {no}: refresh refused: {r}")),
            }
        }
        Op::Use => {
            let live = h.live();
            let grant = &h.grants[live[h.rng.gen_range(0..live.len())]];
            let status = h.clients[grant.client]
                .mcp_status(grant.latest_access())
                .await?;
            if status == 401 {
                t.fail(format!("host {no}: a live grant's access token got 401"));
            }
        }
        Op::Revoke => {
            let live = h.live();
            // The oldest live grant when there are many, else any.
            let g = if live.len() >= MANY_LIVE {
                live[0]
            } else {
                live[h.rng.gen_range(0..live.len())]
            };
            let by_refresh = h.rng.gen_bool(0.5);
            let grant = &mut h.grants[g];
            grant.revocation = Revocation::Unanswered;
            let token = if by_refresh {
                grant.latest_refresh()
            } else {
                grant.latest_access()
            };
            let status = h.clients[grant.client].revoke(token).await?;
            if status == 200 {
                grant.revocation = Revocation::Done;
            } else {
                t.fail(format!("host {no}: revoke answered {status}"));
            }
        }
    }
    Ok(())
}

/// Presents held code `k`; on an answer the code is gone (a grant, or a
/// failure); without one it stays, marked sent.
async fn exchange(h: &mut Host, k: usize, t: &mut Tally) -> anyhow::Result<()> {
    h.codes[k].sent = true;
    let held = &h.codes[k];
    let answer = h.clients[held.client]
        .exchange_answer(&held.code, &held.verifier)
        .await?;
    let held = h.codes.remove(k);
    match answer {
        Ok(pair) => h.grants.push(Grant::new(held.client, pair)),
        Err(r) => t.fail(format!("host {}: exchange refused: {r}", h.no)),
    }
    Ok(())
}

/// After the restart: settles what was in flight and checks that every
/// token the host holds is as it should be.
async fn verify(h: &mut Host) -> Tally {
    let mut t = Tally::default();
    let no = h.no;
    // Refreshes in flight first: a committed one can be replayed only within
    // the grace window.
    for g in 0..h.grants.len() {
        let grant = &mut h.grants[g];
        if !grant.refresh_unanswered {
            continue;
        }
        match h.clients[grant.client].refresh_answer(grant.latest_refresh()).await {
            Ok(Ok(pair)) => {
                grant.push(pair);
                grant.refresh_unanswered = false;
                t.count("in-flight refresh refreshed");
            }
            Ok(Err(r)) => t.fail(format!("host {no}: the refresh token in flight at the kill was refused after the restart: {r}")),
            Err(e) => t.fail(format!("host {no}: refresh after the restart: no answer: {e:#}")),
        }
    }
    for held in std::mem::take(&mut h.codes) {
        let answer = h.clients[held.client]
            .exchange_answer(&held.code, &held.verifier)
            .await;
        match (held.sent, answer) {
            (sent, Ok(Ok(pair))) => {
                h.grants.push(Grant::new(held.client, pair));
                t.count(if sent {
                    "in-flight exchange issued"
                } else {
                    "held code exchanged"
                });
            }
            // It had been redeemed before the kill: the grant nobody
            // received is revoked by the reuse, as it must be.
            (true, Ok(Err(r)))
                if r.error == "invalid_grant" && r.description.contains("already used") =>
            {
                t.count("in-flight exchange refused as used");
            }
            (sent, Ok(Err(r))) => t.fail(format!(
                "host {no}: a code {} before the kill was refused after the restart: {r}",
                if sent { "presented" } else { "received" }
            )),
            (_, Err(e)) => t.fail(format!(
                "host {no}: exchange after the restart: no answer: {e:#}"
            )),
        }
    }
    for grant in h
        .grants
        .iter_mut()
        .filter(|g| g.revocation == Revocation::Unanswered)
    {
        match h.clients[grant.client].revoke(grant.latest_refresh()).await {
            Ok(200) => {
                grant.revocation = Revocation::Done;
                t.count("revocation resent");
            }
            Ok(s) => t.fail(format!("host {no}: revoke after the restart answered {s}")),
            Err(e) => t.fail(format!(
                "host {no}: revoke after the restart: no answer: {e:#}"
            )),
        }
    }
    for grant in h.grants.iter_mut() {
        let client = &h.clients[grant.client];
        match grant.revocation {
            Revocation::None => {
                let before = grant.access.len();
                match client.refresh_answer(grant.latest_refresh()).await {
                    Ok(Ok(pair)) => {
                        grant.push(pair);
                        t.count("grant refreshed");
                    }
                    Ok(Err(r)) => t.fail(format!("host {no}: a live grant's latest refresh token was refused after the restart: {r}")),
                    Err(e) => t.fail(format!("host {no}: refresh after the restart: no answer: {e:#}")),
                }
                for access in &grant.access[grant.checked..before.max(grant.checked)] {
                    match client.mcp_status(access).await {
                        Ok(401) => t.fail(format!("host {no}: an access token received before the kill got 401 after the restart")),
                        Ok(_) => t.count("access token accepted"),
                        Err(e) => t.fail(format!("host {no}: /mcp after the restart: no answer: {e:#}")),
                    }
                }
                grant.checked = before;
            }
            Revocation::Done if !grant.revocation_checked => {
                let access = client.mcp_status(grant.latest_access()).await;
                let refresh = client.refresh_answer(grant.latest_refresh()).await;
                match (access, refresh) {
                    (Ok(401), Ok(Err(r))) if r.error == "invalid_grant" => {
                        grant.revocation_checked = true;
                        t.count("revoked grant refused");
                    }
                    (a, r) => t.fail(format!(
                        "host {no}: a revoked grant after the restart: /mcp {:?}, refresh {}",
                        a.map_err(|e| e.to_string()),
                        match r {
                            Ok(Ok(_)) => "issued a pair".to_string(),
                            Ok(Err(r)) => r.to_string(),
                            Err(e) => format!("no answer: {e:#}"),
                        }
                    )),
                }
            }
            _ => {}
        }
    }
    t
}
