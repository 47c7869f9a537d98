//! The `/mcp` endpoint: MCP over Streamable HTTP (rmcp), stateful sessions.
//!
//! A guard in front of rmcp's service authenticates every request with the
//! same bearer check as `/v1` and hands the [`Caller`] to the tools through
//! the request extensions: rmcp copies each HTTP request's
//! [`Parts`] into the tool call's `RequestContext::extensions`, so a tool
//! reads `Parts` from there and the `Caller` from `Parts::extensions`.
//!
//! Sessions are bound to who opened them: the token's person (or, for an
//! unbound token, that token). A request naming a session that is unknown,
//! ended, or owned by someone else gets the same 404 `not_found` envelope, so
//! session ids cannot be probed across people.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, Content, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerInfo,
};
use rmcp::service::{ElicitationError, RequestContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorCode};
use crate::server::AppState;
use crate::store::nodes::{NewNode, Node};
use crate::store::Caller;

/// Path of the MCP endpoint, on the same listener as `/v1`.
pub const MCP_PATH: &str = "/mcp";
/// Header carrying the session id (matched case-insensitively by `http`).
const SESSION_HEADER: &str = "mcp-session-id";
/// How long `ask_user` waits for the client's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest title `capture` derives from the first line, in characters.
const CAPTURE_TITLE_CHARS: usize = 80;
/// Most nodes `query_graph` returns.
const MAX_LIMIT: u32 = 100;

const INSTRUCTIONS: &str = "spor-sandbox: a stand-in for a Spor server. Nodes live in the \
    token's org; put_node and capture stamp the author from the token (any author you send is \
    ignored). query_graph searches titles and bodies, get_node reads one node by id. \
    slow_count and ask_user are diagnostics for streaming and server-to-client requests.";

/// Who opened a session: the person, or the token itself when unbound.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Person(String),
    Token(String),
}

impl Owner {
    fn of(caller: &Caller) -> Self {
        match &caller.person {
            Some(p) => Self::Person(p.id.clone()),
            None => Self::Token(caller.token_hash.clone()),
        }
    }
}

#[derive(Clone)]
struct Guard {
    app: AppState,
    /// Session id → who opened it, and when that was recorded.
    owners: Arc<Mutex<HashMap<String, (Owner, std::time::Instant)>>>,
    sessions: Arc<LocalSessionManager>,
}

impl Guard {
    fn owner_of(&self, session: &str) -> Option<Owner> {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.get(session).map(|(o, _)| o.clone())
    }

    fn forget(&self, session: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.remove(session);
    }

    /// Records a new session and drops owners of sessions rmcp has closed
    /// (idle timeout), so the map stays as small as the live session set.
    /// Owners recorded after the snapshot of live sessions was taken are
    /// kept: their sessions may be newer than the snapshot (two initializes
    /// racing would otherwise drop each other's owner, and the next request
    /// of that session would get 404).
    async fn record(&self, session: String, owner: Owner) {
        let taken = std::time::Instant::now();
        let live: HashSet<String> = {
            let sessions = self.sessions.sessions.read().await;
            sessions.keys().map(|k| k.to_string()).collect()
        };
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.retain(|id, (_, at)| live.contains(id) || *at >= taken);
        owners.insert(session, (owner, std::time::Instant::now()));
    }
}

/// The `/mcp` route: rmcp's Streamable HTTP service behind the bearer guard.
pub fn routes(app: &AppState) -> Router<AppState> {
    let sessions = Arc::new(LocalSessionManager::default());
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(app.shutdown_token().child_token());
    let tools_state = app.clone();
    let service = StreamableHttpService::new(
        move || Ok(SporTools::new(tools_state.clone())),
        Arc::clone(&sessions),
        config,
    );
    let guard = Guard {
        app: app.clone(),
        owners: Arc::default(),
        sessions,
    };
    Router::new()
        .route_service(MCP_PATH, service)
        .layer(middleware::from_fn_with_state(guard, guard_mcp))
}

async fn guard_mcp(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let faults = guard.app.faults;
    if faults.mcp_401 {
        return ApiError::unauthorized("unauthorized (injected fault mcp-401)").into_response();
    }
    if faults.mcp_500 && req.method() == Method::POST {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal server error (injected fault mcp-500)",
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    let caller = match Authenticated::from_request_parts(&mut parts, &guard.app).await {
        Ok(Authenticated(caller)) => caller,
        Err(e) => return e.into_response(),
    };
    let owner = Owner::of(&caller);
    let session = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        if guard.owner_of(id).as_ref() != Some(&owner) {
            return no_such_session();
        }
    }
    let is_delete = parts.method == Method::DELETE;
    parts.extensions.insert(caller);
    let resp = next.run(Request::from_parts(parts, body)).await;
    match session {
        None => {
            let created = resp
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let (true, Some(id)) = (resp.status().is_success(), created) {
                guard.record(id, owner).await;
            }
            resp
        }
        Some(id) => {
            if resp.status() == StatusCode::NOT_FOUND {
                // rmcp closed it (idle timeout) after we recorded it.
                guard.forget(&id);
                return no_such_session();
            }
            if is_delete && resp.status().is_success() {
                guard.forget(&id);
            }
            resp
        }
    }
}

fn no_such_session() -> Response {
    ApiError::not_found("no such session").into_response()
}

/// The authenticated caller of the HTTP request that carried this MCP request.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    ctx.extensions
        .get::<Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        // Unreachable behind the guard; an internal error, not a tool error.
        .ok_or_else(|| ErrorData::internal_error("request carries no authenticated caller", None))
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![Content::text(message.into())])
}

fn store_error(e: ApiError) -> ErrorData {
    ErrorData::internal_error(format!("store failed ({})", e.code().as_str()), None)
}

fn node_result(node: &Node) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(node)
        .map_err(|e| ErrorData::internal_error(format!("serializing node: {e}"), None))?;
    Ok(CallToolResult::structured(value))
}

/// `put_node` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PutNodeArgs {
    /// Node kind.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// One-line title (required, not blank).
    pub title: String,
    /// Free text.
    pub body: Option<String>,
    /// Free-form tags.
    pub tags: Option<Vec<String>>,
    /// Ignored: the server stamps the author from the token.
    pub author: Option<Value>,
}

fn default_kind() -> String {
    "note".to_owned()
}

/// `get_node` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetNodeArgs {
    /// Node id, e.g. "n_0123456789abcdef".
    pub id: String,
}

/// `query_graph` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryGraphArgs {
    /// Text to find in titles and bodies (case-insensitive); omit for all nodes.
    pub query: Option<String>,
    /// Only nodes of this kind.
    pub kind: Option<String>,
    /// Most nodes to return, 1 to 100 (default 20).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// `capture` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CaptureArgs {
    /// The captured text; its first line becomes the title.
    pub text: String,
    /// Where it came from (an app, a URL, …).
    pub source: Option<String>,
}

/// `slow_count` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SlowCountArgs {
    /// How many steps, 1 to 20.
    #[schemars(range(min = 1, max = 20))]
    pub steps: u32,
    /// Pause before each step in milliseconds, 0 to 1000.
    #[schemars(range(min = 0, max = 1000))]
    pub delay_ms: u32,
}

/// `ask_user` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskUserArgs {
    /// The question shown to the user.
    pub question: String,
}

/// What `ask_user` asks the client for (an elicitation form with one field).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Answer {
    /// The user's answer.
    pub answer: String,
}
rmcp::elicit_safe!(Answer);

/// The sandbox's MCP server: one instance per session.
#[derive(Clone)]
pub struct SporTools {
    app: AppState,
    tool_router: ToolRouter<Self>,
}

impl SporTools {
    /// A server over the shared state.
    pub fn new(app: AppState) -> Self {
        Self {
            app,
            tool_router: Self::tool_router(),
        }
    }

    async fn store_node(
        &self,
        ctx: &RequestContext<RoleServer>,
        node: NewNode,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(ctx)?;
        let node = self
            .app
            .with_store(move |s| s.put_node(&caller, &node))
            .await
            .map_err(store_error)?;
        node_result(&node)
    }
}

#[tool_router]
impl SporTools {
    /// Stores a node in the token's org; the author is the token's person.
    #[tool(
        description = "Store a node (default kind \"note\") in your org. The author is always \
                       the token's person; an `author` argument is ignored. Returns the node.",
        annotations(
            title = "Store a node",
            read_only_hint = false,
            destructive_hint = true
        )
    )]
    async fn put_node(
        &self,
        Parameters(args): Parameters<PutNodeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let title = args.title.trim();
        if title.is_empty() {
            return Ok(tool_error("title must not be blank"));
        }
        let kind = args.kind.trim();
        if kind.is_empty() {
            return Ok(tool_error("kind must not be blank"));
        }
        let tags = args.tags.unwrap_or_default();
        if tags.iter().any(|t| t.trim().is_empty()) {
            return Ok(tool_error("tags must not be blank"));
        }
        let node = NewNode {
            kind: kind.to_owned(),
            title: title.to_owned(),
            body: args.body.unwrap_or_default(),
            tags,
            source: None,
        };
        self.store_node(&ctx, node).await
    }

    /// Reads one node of the token's org.
    #[tool(
        description = "Get one node of your org by id.",
        annotations(title = "Get a node", read_only_hint = true)
    )]
    async fn get_node(
        &self,
        Parameters(args): Parameters<GetNodeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let caller = caller(&ctx)?;
        let id = args.id;
        let node = self
            .app
            .with_store(move |s| s.get_node(&caller, &id))
            .await
            .map_err(store_error)?;
        match node {
            Some(node) => node_result(&node),
            None => Ok(tool_error("no such node")),
        }
    }

    /// Searches the token's org, newest first.
    #[tool(
        description = "Find nodes of your org whose title or body contains `query` \
                       (case-insensitive), newest first. Returns {nodes, count}.",
        annotations(title = "Search the graph", read_only_hint = true)
    )]
    async fn query_graph(
        &self,
        Parameters(args): Parameters<QueryGraphArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = args.limit.unwrap_or(20);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Ok(tool_error(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let caller = caller(&ctx)?;
        let nodes = self
            .app
            .with_store(move |s| {
                s.query_nodes(
                    &caller,
                    args.query.as_deref(),
                    args.kind.as_deref(),
                    limit as usize,
                )
            })
            .await
            .map_err(store_error)?;
        Ok(CallToolResult::structured(
            json!({ "count": nodes.len(), "nodes": nodes }),
        ))
    }

    /// Stores quick text as a `capture` node.
    #[tool(
        description = "Capture a piece of text as a node of kind \"capture\"; its first line \
                       (up to 80 characters) becomes the title. Returns the node.",
        annotations(
            title = "Capture text",
            read_only_hint = false,
            destructive_hint = false
        )
    )]
    async fn capture(
        &self,
        Parameters(args): Parameters<CaptureArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let first_line = args.text.lines().map(str::trim).find(|l| !l.is_empty());
        let Some(first_line) = first_line else {
            return Ok(tool_error("text must not be blank"));
        };
        let title: String = first_line.chars().take(CAPTURE_TITLE_CHARS).collect();
        let node = NewNode {
            kind: "capture".to_owned(),
            title: title.trim_end().to_owned(),
            body: args.text,
            tags: Vec::new(),
            source: args.source,
        };
        self.store_node(&ctx, node).await
    }

    /// Diagnostic: counts slowly, reporting progress after each step.
    #[tool(
        description = "Diagnostic: count to `steps` (1-20), pausing `delay_ms` (0-1000) before \
                       each step and sending notifications/progress after it when the request \
                       has a progressToken. Returns \"counted N\".",
        annotations(title = "Count slowly", read_only_hint = true)
    )]
    async fn slow_count(
        &self,
        Parameters(args): Parameters<SlowCountArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if !(1..=20).contains(&args.steps) {
            return Ok(tool_error("steps must be between 1 and 20"));
        }
        if args.delay_ms > 1000 {
            return Ok(tool_error("delay_ms must be between 0 and 1000"));
        }
        let token = ctx.meta.get_progress_token();
        let delay = Duration::from_millis(u64::from(args.delay_ms));
        for step in 1..=args.steps {
            tokio::select! {
                _ = ctx.ct.cancelled() => {
                    return Err(ErrorData::internal_error("cancelled", None));
                }
                _ = tokio::time::sleep(delay) => {}
            }
            if let Some(token) = &token {
                let param = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(args.steps))
                    .with_message(format!("step {step} of {}", args.steps));
                if ctx.peer.notify_progress(param).await.is_err() {
                    // The session is gone; nobody is left to answer.
                    return Err(ErrorData::internal_error("session closed", None));
                }
            }
        }
        Ok(CallToolResult::success(vec![Content::text(format!(
            "counted {}",
            args.steps
        ))]))
    }

    /// Diagnostic: asks the user through the client (`elicitation/create`).
    #[tool(
        description = "Diagnostic: ask the user `question` through the client with an \
                       elicitation/create request (form with one string field `answer`). \
                       Returns \"answer: …\" or \"declined\".",
        annotations(title = "Ask the user", read_only_hint = true)
    )]
    async fn ask_user(
        &self,
        Parameters(args): Parameters<AskUserArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let asked = ctx
            .peer
            .elicit_with_timeout::<Answer>(args.question, Some(ASK_TIMEOUT))
            .await;
        let text = match asked {
            Ok(Some(a)) => format!("answer: {}", a.answer),
            Ok(None) | Err(ElicitationError::NoContent) => {
                return Ok(tool_error("the client accepted without an answer"))
            }
            Err(ElicitationError::UserDeclined | ElicitationError::UserCancelled) => {
                "declined".to_owned()
            }
            Err(ElicitationError::CapabilityNotSupported) => {
                return Ok(tool_error(
                    "the client did not declare the elicitation capability",
                ))
            }
            Err(e) => return Ok(tool_error(format!("asking the user failed: {e}"))),
        };
        Ok(CallToolResult::success(vec![Content::text(text)]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SporTools {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "spor-sandbox",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}
