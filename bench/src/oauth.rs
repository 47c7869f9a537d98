//! The companion's OAuth flow driven the way a host and a person do it
//! (register, authorize, approve on the consent page, exchange), and the
//! token-endpoint measurements: code exchanges and refresh rotations.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Where the authorization response is sent (never followed: the code is
/// read from the `Location` header).
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// An access/refresh token pair.
#[derive(Clone)]
pub struct Pair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// What a refused token request answered (RFC 6749 §5.2).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// The `error` code.
    pub error: String,
    /// The `error_description`.
    pub description: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.description)
    }
}

/// An approved authorization request.
pub struct Consented {
    /// The authorization code.
    pub code: String,
    /// Its PKCE verifier.
    pub verifier: String,
    /// The consent page's CSRF token.
    pub csrf: String,
}

/// A registered client of the companion.
#[derive(Clone)]
pub struct OAuth {
    base: String,
    account_id: String,
    /// The client id.
    pub client_id: String,
    http: reqwest::Client,
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()?)
}

fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("HTTP {} without Location", resp.status()))
}

fn pair_of(v: &Value) -> anyhow::Result<Pair> {
    match (v["access_token"].as_str(), v["refresh_token"].as_str()) {
        (Some(a), Some(r)) if !a.is_empty() && !r.is_empty() => Ok(Pair {
            access: a.to_string(),
            refresh: r.to_string(),
        }),
        _ => bail!("token response without a token pair"),
    }
}

impl OAuth {
    /// Registers a client (RFC 7591) that acts as `account_id`.
    pub async fn register(base: &str, account_id: &str, name: &str) -> anyhow::Result<Self> {
        let http = http_client()?;
        let resp = http
            .post(format!("{base}/oauth/register"))
            .json(&json!({
                "client_name": name,
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }))
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        let client_id = v["client_id"]
            .as_str()
            .ok_or_else(|| anyhow!("registration failed ({status}): {v}"))?
            .to_string();
        Ok(Self {
            base: base.to_string(),
            account_id: account_id.to_string(),
            client_id,
            http,
        })
    }

    /// The same client with a new connection pool (after a restart, pooled
    /// connections lead to a process that is gone).
    pub fn reconnect(&self) -> anyhow::Result<Self> {
        let mut o = self.clone();
        o.http = http_client()?;
        Ok(o)
    }

    /// An authorization code approved on the consent page, and its verifier.
    pub async fn code(&self) -> anyhow::Result<(String, String)> {
        let c = self.consent().await?;
        Ok((c.code, c.verifier))
    }

    /// An authorization request approved on the consent page: the code, its
    /// PKCE verifier and the page's CSRF token (all secrets a log must not show).
    pub async fn consent(&self) -> anyhow::Result<Consented> {
        let (verifier, challenge) = pkce();
        let resp = self
            .http
            .get(format!("{}/oauth/authorize", self.base))
            .query(&[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("state", "bench"),
                ("scope", "mcp"),
                ("resource", &format!("{}/mcp", self.base)),
            ])
            .send()
            .await?;
        let consent = location(&resp).context("authorize")?;
        let page = self
            .http
            .get(format!("{}{consent}", self.base))
            .send()
            .await?
            .text()
            .await?;
        let marker = "name=\"csrf\" value=\"";
        let start = page
            .find(marker)
            .ok_or_else(|| anyhow!("no CSRF token on the consent page"))?
            + marker.len();
        let csrf = page[start..start + page[start..].find('"').unwrap_or(0)].to_string();
        let resp = self
            .http
            .post(format!("{}{consent}", self.base))
            .header("origin", &self.base)
            .form(&[
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
                ("account_id", &self.account_id),
            ])
            .send()
            .await?;
        let back = url::Url::parse(&location(&resp).context("consent")?)?;
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| anyhow!("no code in the redirect: {back}"))?;
        Ok(Consented {
            code,
            verifier,
            csrf,
        })
    }

    /// The token endpoint's answer, if one was received in full: a pair, or
    /// the error it answered with. `Err` means no complete answer arrived
    /// (connection refused or cut), so the client cannot know what happened.
    pub async fn token_answer(
        &self,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Result<Pair, Refusal>> {
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            return Ok(Err(Refusal {
                status: status.as_u16(),
                error: v["error"].as_str().unwrap_or_default().to_string(),
                description: v["error_description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }));
        }
        pair_of(&v).map(Ok)
    }

    /// [`OAuth::exchange`], telling a refusal from a missing answer.
    pub async fn exchange_answer(
        &self,
        code: &str,
        verifier: &str,
    ) -> anyhow::Result<Result<Pair, Refusal>> {
        self.token_answer(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("client_id", &self.client_id),
        ])
        .await
    }

    /// [`OAuth::refresh`], telling a refusal from a missing answer.
    pub async fn refresh_answer(&self, refresh: &str) -> anyhow::Result<Result<Pair, Refusal>> {
        self.token_answer(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &self.client_id),
        ])
        .await
    }

    /// Revokes (RFC 7009) the grant of an access or refresh token; the status.
    pub async fn revoke(&self, token: &str) -> anyhow::Result<u16> {
        let resp = self
            .http
            .post(format!("{}/oauth/revoke", self.base))
            .form(&[("token", token), ("client_id", &self.client_id)])
            .send()
            .await?;
        let status = resp.status().as_u16();
        resp.bytes().await?;
        Ok(status)
    }

    /// Exchanges a code.
    pub async fn exchange(&self, code: &str, verifier: &str) -> anyhow::Result<Pair> {
        self.exchange_answer(code, verifier)
            .await?
            .map_err(|r| anyhow!("token endpoint answered {r}"))
    }

    /// Rotates a refresh token.
    pub async fn refresh(&self, refresh: &str) -> anyhow::Result<Pair> {
        self.refresh_answer(refresh)
            .await?
            .map_err(|r| anyhow!("token endpoint answered {r}"))
    }

    /// A new grant's token pair.
    pub async fn grant(&self) -> anyhow::Result<Pair> {
        let (code, verifier) = self.code().await?;
        self.exchange(&code, &verifier).await
    }

    /// Whether `/mcp` accepts the access token (anything but the bearer
    /// challenge means the companion let it through to the upstream).
    pub async fn accepted(&self, access: &str) -> anyhow::Result<bool> {
        Ok(self.mcp_status(access).await? != 401)
    }

    /// The status `/mcp` answers a `ping` with this bearer token.
    pub async fn mcp_status(&self, access: &str) -> anyhow::Result<u16> {
        let resp = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(access)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .send()
            .await?;
        let status = resp.status().as_u16();
        resp.bytes().await?;
        Ok(status)
    }
}

/// What one token-endpoint measurement found.
pub struct TokenRun {
    /// `code exchange` or `refresh rotation`.
    pub op: &'static str,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Successful operations.
    pub done: usize,
    /// Failed operations.
    pub errors: usize,
    /// Timed wall clock.
    pub elapsed: Duration,
    /// Issued pairs whose access token `/mcp` refused afterwards.
    pub unusable: usize,
}

/// Exchanges `count` codes (prepared beforehand, untimed) with `concurrency`
/// requests in flight; then checks every issued access token.
pub async fn bench_exchanges(
    oauth: &OAuth,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<TokenRun> {
    // Codes are prepared a few at a time: pending consent requests are capped.
    let codes = in_flight(8, 0..count, |_| {
        let o = oauth.clone();
        async move { o.code().await }
    })
    .await?
    .into_iter()
    .collect::<anyhow::Result<Vec<_>>>()?;

    let started = Instant::now();
    let results = in_flight(concurrency, codes, |(code, verifier)| {
        let o = oauth.clone();
        async move { o.exchange(&code, &verifier).await }
    })
    .await?;
    let elapsed = started.elapsed();
    let (pairs, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    let pairs: Vec<Pair> = pairs.into_iter().flatten().collect();
    let errors = failed.len();
    let unusable = count_unusable(oauth, pairs.iter().map(|p| p.access.clone())).await?;
    Ok(TokenRun {
        op: "code exchange",
        concurrency,
        done: pairs.len(),
        errors,
        elapsed,
        unusable,
    })
}

/// Rotates the refresh tokens of `concurrency` grants, each `per_grant`
/// times in sequence, all grants at once; then checks that every pair works
/// and that no grant was revoked on the way.
pub async fn bench_rotations(
    oauth: &OAuth,
    concurrency: usize,
    per_grant: usize,
) -> anyhow::Result<(TokenRun, Vec<Pair>)> {
    let mut starts = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        starts.push(oauth.grant().await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for start in starts {
        let o = oauth.clone();
        tasks.push(tokio::spawn(async move {
            let mut issued = Vec::with_capacity(per_grant);
            let mut refresh = start.refresh;
            for _ in 0..per_grant {
                let pair = o.refresh(&refresh).await?;
                refresh = pair.refresh.clone();
                issued.push(pair);
            }
            Ok::<_, anyhow::Error>(issued)
        }));
    }
    let mut chains = Vec::with_capacity(concurrency);
    let mut errors = 0;
    for t in tasks {
        match t.await? {
            Ok(issued) => chains.push(issued),
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed();
    let done = chains.iter().map(Vec::len).sum();
    let unusable = count_unusable(oauth, chains.iter().flatten().map(|p| p.access.clone())).await?;
    let last = chains.iter().filter_map(|c| c.last().cloned()).collect();
    Ok((
        TokenRun {
            op: "refresh rotation",
            concurrency,
            done,
            errors: errors * per_grant,
            elapsed,
            unusable,
        },
        last,
    ))
}

/// How many of these access tokens `/mcp` refuses (8 checks in flight).
async fn count_unusable(
    oauth: &OAuth,
    tokens: impl Iterator<Item = String>,
) -> anyhow::Result<usize> {
    let checks = in_flight(8, tokens, |t| {
        let o = oauth.clone();
        async move { tokio::time::timeout(Duration::from_secs(30), o.accepted(&t)).await }
    })
    .await?;
    let mut refused = 0;
    for c in checks {
        if !matches!(c, Ok(Ok(true))) {
            refused += 1;
        }
    }
    Ok(refused)
}

/// Runs `f` on every item as its own task, at most `limit` at once; the
/// results come back in the items' order.
async fn in_flight<T, R, F, Fut>(
    limit: usize,
    items: impl IntoIterator<Item = T>,
    f: F,
) -> anyhow::Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let gate = Arc::new(Semaphore::new(limit));
    let tasks: Vec<_> = items
        .into_iter()
        .map(|item| {
            let (work, gate) = (f(item), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await?);
    }
    Ok(out)
}
