//! Each assistant's access, enforced by the gateway: the default stays full;
//! read-only and chosen tools cut `tools/list` answers (JSON and event
//! stream, page by page, cursors kept) and refuse calls outside them with a
//! JSON-RPC error that names the tool, send nothing upstream and log
//! `denied`; neither an `Mcp-Name` header, a batch nor a body the gateway
//! reads differently can carry a call past the policy; a change applies to
//! the next request on the same token.

use axum::http::StatusCode;
use serde_json::{json, Value};
use spor_companion::access::Access;
use spor_companion::grants;

use crate::support::{Connected, Harness, Reply, ToolServer};

fn tools() -> Vec<Value> {
    vec![
        json!({"name": "get_node", "title": "Get a node", "annotations": {"readOnlyHint": true}}),
        json!({"name": "put_node", "annotations": {"readOnlyHint": false}}),
        json!({"name": "search", "annotations": {"readOnlyHint": true}}),
        json!({"name": "capture", "annotations": {"readOnlyHint": false, "destructiveHint": false}}),
    ]
}

async fn started(sse: bool) -> Harness {
    let h = Harness::start().await;
    h.upstream.serve_tools(ToolServer {
        tools: tools(),
        page_size: 2,
        sse,
    });
    h
}

/// A harness serving the tools as JSON, and an assistant connected with `access`.
async fn connected_with(access: &str) -> (Harness, Connected) {
    let h = started(false).await;
    let c = h.connect().await;
    set(&h, &c.grant_id, access).await;
    (h, c)
}

async fn set(h: &Harness, grant: &str, access: &str) {
    let access = Access::parse(access).expect("access");
    assert!(grants::set_access(&h.state, grant, access)
        .await
        .expect("store"));
}

fn list(cursor: Option<&str>) -> String {
    let params = cursor.map_or(json!({}), |c| json!({ "cursor": c }));
    json!({"jsonrpc": "2.0", "id": "list", "method": "tools/list", "params": params}).to_string()
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
        .to_string()
}

/// The response to `id` in a JSON or event-stream reply.
fn answer(r: &Reply, id: &Value) -> Value {
    if r.header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        let mut parser = spor_companion::sse::Parser::new(1 << 20);
        let events = parser.feed(r.text.as_bytes()).expect("events");
        return events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
            .find(|v| v.get("id") == Some(id))
            .unwrap_or_else(|| panic!("no answer to {id}: {}", r.text));
    }
    r.json()
}

fn names(v: &Value) -> Vec<String> {
    v.pointer("/result/tools")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// How many upstream requests carried a `tools/call` of `tool`.
fn upstream_calls(h: &Harness, tool: &str) -> usize {
    let needle = format!("\"name\":\"{tool}\"");
    h.upstream
        .mcp_seen()
        .iter()
        .filter(|s| s.body.contains("tools/call") && s.body.contains(&needle))
        .count()
}

#[tokio::test]
async fn the_default_is_full_access_every_tool_listed_and_callable() {
    let h = started(false).await;
    let c = h.connect().await;
    assert_eq!(h.grant(&c.grant_id).await.access, Access::Full);
    let page = h.mcp_post(&c.tokens.access, None, &list(None)).await;
    assert_eq!(names(&page.json()), ["get_node", "put_node"]);
    assert_eq!(page.json()["result"]["nextCursor"], "1");
    let r = h.mcp_post(&c.tokens.access, None, &call("put_node")).await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "called put_node");
    assert_eq!(upstream_calls(&h, "put_node"), 1);
    h.stop().await;
}

#[tokio::test]
async fn read_only_lists_only_read_tools_page_by_page_as_json_and_as_an_event_stream() {
    for sse in [false, true] {
        let h = started(sse).await;
        let c = h.connect().await;
        set(&h, &c.grant_id, "read-only").await;
        let first = h.mcp_post(&c.tokens.access, None, &list(None)).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let first_answer = answer(&first, &json!("list"));
        assert_eq!(names(&first_answer), ["get_node"], "sse {sse}");
        assert_eq!(
            first_answer["result"]["nextCursor"], "1",
            "the cursor passes"
        );
        let second = answer(
            &h.mcp_post(&c.tokens.access, None, &list(Some("1"))).await,
            &json!("list"),
        );
        assert_eq!(names(&second), ["search"], "sse {sse}");
        if sse {
            assert!(
                first.text.contains("notifications/progress"),
                "other events pass: {}",
                first.text
            );
        }
        h.stop().await;
    }
}

#[tokio::test]
async fn a_call_outside_the_access_is_refused_naming_the_tool_never_sent_and_logged_denied() {
    let (h, c) = connected_with("read-only").await;
    let r = h.mcp_post(&c.tokens.access, None, &call("put_node")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["id"], 9);
    assert_eq!(v["error"]["code"], -32003);
    let message = v["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("\"put_node\"") && message.contains("read only"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "spor-companiond grants access {} --access full",
            c.grant_id
        )),
        "{message}"
    );
    assert_eq!(upstream_calls(&h, "put_node"), 0, "nothing went upstream");
    let logged = h.calls_when(&c.grant_id, 1).await;
    assert_eq!(logged[0].tool.as_deref(), Some("put_node"));
    assert_eq!(logged[0].outcome.to_string(), "denied");

    // A read tool works; with no list seen yet, the gateway reads it once.
    let ok = h.mcp_post(&c.tokens.access, None, &call("get_node")).await;
    assert_eq!(
        ok.json()["result"]["content"][0]["text"],
        "called get_node",
        "{}",
        ok.text
    );
    assert_eq!(upstream_calls(&h, "get_node"), 1);
    h.stop().await;
}

#[tokio::test]
async fn under_read_only_a_tool_never_seen_is_denied_and_looked_up_at_most_once_a_minute() {
    let (h, c) = connected_with("read-only").await;
    let lists = |h: &Harness| {
        h.upstream
            .mcp_seen()
            .iter()
            .filter(|s| s.body.contains("tools/list"))
            .count()
    };
    for _ in 0..3 {
        let r = h
            .mcp_post(&c.tokens.access, None, &call("delete_everything"))
            .await;
        assert_eq!(r.json()["error"]["code"], -32003, "{}", r.text);
    }
    assert_eq!(lists(&h), 2, "one fetch of both pages, not one per call");
    assert_eq!(upstream_calls(&h, "delete_everything"), 0);
    h.clock.advance(61);
    let r = h
        .mcp_post(&c.tokens.access, None, &call("delete_everything"))
        .await;
    assert_eq!(r.json()["error"]["code"], -32003);
    assert_eq!(lists(&h), 4, "looked up again after a minute");
    h.stop().await;
}

#[tokio::test]
async fn chosen_tools_are_the_only_ones_listed_and_callable() {
    let (h, c) = connected_with("tools:capture,get_node").await;
    let first = h.mcp_post(&c.tokens.access, None, &list(None)).await.json();
    let second = h
        .mcp_post(&c.tokens.access, None, &list(Some("1")))
        .await
        .json();
    assert_eq!(names(&first), ["get_node"]);
    assert_eq!(names(&second), ["capture"]);
    for (tool, allowed) in [
        ("capture", true),
        ("get_node", true),
        ("put_node", false),
        ("search", false),
    ] {
        let r = h.mcp_post(&c.tokens.access, None, &call(tool)).await.json();
        assert_eq!(r.get("error").is_none(), allowed, "{tool}: {r}");
        assert_eq!(upstream_calls(&h, tool), usize::from(allowed), "{tool}");
    }
    h.stop().await;
}

#[tokio::test]
async fn an_mcp_name_header_that_disagrees_with_the_body_is_refused() {
    let (h, c) = connected_with("tools:get_node").await;
    for (body_tool, header) in [("get_node", "put_node"), ("put_node", "get_node")] {
        let r = h
            .http
            .post(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-name", header)
            .body(call(body_tool))
            .send()
            .await
            .expect("POST");
        let r = Reply::read(r).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.json()["error"]["code"], -32020, "{}", r.text);
    }
    assert_eq!(
        upstream_calls(&h, "get_node") + upstream_calls(&h, "put_node"),
        0
    );
    h.stop().await;
}

#[tokio::test]
async fn a_batch_with_one_forbidden_call_and_a_body_read_two_ways_are_refused_whole() {
    let (h, c) = connected_with("tools:get_node").await;
    let batch = format!(
        "[{},{}]",
        call("get_node"),
        call("put_node").replace("\"id\":9", "\"id\":10")
    );
    let r = h.mcp_post(&c.tokens.access, None, &batch).await;
    assert_eq!(r.json()["error"]["code"], -32003, "{}", r.text);
    assert_eq!(r.json()["id"], Value::Null);
    // Duplicate keys: this gateway would read one name, a JavaScript
    // server the other.
    let twice = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_node","name":"put_node"}}"#;
    let r = h.mcp_post(&c.tokens.access, None, twice).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], -32600);
    assert_eq!(
        upstream_calls(&h, "get_node") + upstream_calls(&h, "put_node"),
        0
    );
    assert!(h
        .upstream
        .mcp_seen()
        .iter()
        .all(|s| !s.body.contains("tools/call")));
    h.stop().await;
}

#[tokio::test]
async fn a_change_of_access_applies_to_the_next_request_on_the_same_token() {
    let (h, c) = connected_with("read-only").await;
    let denied = h.mcp_post(&c.tokens.access, None, &call("put_node")).await;
    assert_eq!(denied.json()["error"]["code"], -32003);
    set(&h, &c.grant_id, "full").await;
    let allowed = h.mcp_post(&c.tokens.access, None, &call("put_node")).await;
    assert_eq!(
        allowed.json()["result"]["content"][0]["text"],
        "called put_node",
        "{}",
        allowed.text
    );
    assert_eq!(h.grant(&c.grant_id).await.access, Access::Full);
    // A revoked grant's access cannot be changed.
    grants::disconnect(&h.state, &c.grant_id)
        .await
        .expect("revoke");
    assert!(!grants::set_access(&h.state, &c.grant_id, Access::ReadOnly)
        .await
        .expect("store"));
    h.stop().await;
}

/// POSTs Allow on the consent page with `extra` form fields.
async fn allow_with(h: &Harness, id: &str, account: &str, extra: &[(&str, &str)]) -> Reply {
    let csrf = h.csrf(id).await;
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("decision", "allow"),
        ("account_id", account),
    ];
    form.extend_from_slice(extra);
    let resp = h
        .http
        .post(h.url(&format!("/oauth/consent/{id}")))
        .header("origin", &h.base)
        .form(&form)
        .send()
        .await
        .expect("POST consent");
    Reply::read(resp).await
}

#[tokio::test]
async fn the_consent_page_offers_the_access_choices_and_the_chosen_one_becomes_the_grants() {
    use crate::support::{query_of, Pkce, PAT, REDIRECT};
    let h = started(false).await;
    let account = h.add_account(PAT, "acme").await;
    let client = h.register(&[REDIRECT]).await;

    let pkce = Pkce::new();
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &pkce))
        .await;
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    for needle in [
        "name=\"access\" value=\"full\" checked",
        "name=\"access\" value=\"read_only\"",
        "name=\"access\" value=\"tools\">",
        &format!("data-account=\"{account}\" data-pending=\"true\""),
        &format!("href=\"?tools={account}\""),
    ] {
        assert!(page.text.contains(needle), "{needle}: {}", page.text);
    }
    assert!(
        !page.text.contains("name=\"tool:"),
        "no checklist before it is asked for"
    );
    assert!(
        h.upstream.mcp_seen().is_empty(),
        "opening a consent contacts no MCP server"
    );

    // The person picks "Chosen tools": the page reads the list then.
    let page = h.get(&format!("/oauth/consent/{id}?tools={account}")).await;
    assert!(!h.upstream.mcp_seen().is_empty());
    for needle in [
        "name=\"access\" value=\"tools\" checked",
        &format!("<option value=\"{account}\" selected>"),
        &format!("data-account=\"{account}\" data-pending=\"false\""),
        "name=\"tool:get_node\"> \u{2068}Get a node\u{2069} <code>get_node</code> <span class=\"tag\">read only</span>",
        "name=\"tool:put_node\"> <code>put_node</code> <span class=\"tag destructive\"",
        "name=\"tool:capture\"> <code>capture</code> <span class=\"tag\">adds data</span>",
    ] {
        assert!(page.text.contains(needle), "{needle}: {}", page.text);
    }

    // Chosen tools with none ticked: refused on the page, nothing decided.
    let none = allow_with(&h, &id, &account, &[("access", "tools")]).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.text);
    assert!(
        none.text.contains("data-error=\"no_tools\""),
        "{}",
        none.text
    );
    assert_eq!(h.counts().await.codes, 0);

    let r = allow_with(
        &h,
        &id,
        &account,
        &[
            ("access", "tools"),
            ("tool:get_node", "on"),
            ("tool:capture", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let code = query_of(&r.location(&h.base))["code"].clone();
    let t = h
        .token(&h.exchange_params(&client, &code, REDIRECT, &pkce.verifier))
        .await;
    let grant = h
        .grant_of(t.json()["access_token"].as_str().expect("token"))
        .await;
    assert_eq!(
        h.grant(&grant).await.access,
        Access::parse("tools:capture,get_node").expect("tools")
    );

    // Read only, the same way.
    let pkce = Pkce::new();
    let id = h
        .authorize(&h.authorize_params(&client, REDIRECT, &pkce))
        .await;
    let r = allow_with(&h, &id, &account, &[("access", "read_only")]).await;
    let code = query_of(&r.location(&h.base))["code"].clone();
    let t = h
        .token(&h.exchange_params(&client, &code, REDIRECT, &pkce.verifier))
        .await;
    let grant = h
        .grant_of(t.json()["access_token"].as_str().expect("token"))
        .await;
    assert_eq!(h.grant(&grant).await.access, Access::ReadOnly);
    h.stop().await;
}

#[tokio::test]
async fn changing_access_reads_the_annotations_again() {
    let (h, c) = connected_with("read-only").await;
    assert!(h
        .mcp_post(&c.tokens.access, None, &call("get_node"))
        .await
        .json()["result"]
        .is_object());
    // The upstream now says get_node writes.
    let mut changed = tools();
    changed[0]["annotations"]["readOnlyHint"] = false.into();
    h.upstream.serve_tools(ToolServer {
        tools: changed,
        page_size: 2,
        sse: false,
    });
    let still = h.mcp_post(&c.tokens.access, None, &call("get_node")).await;
    assert!(
        still.json()["result"].is_object(),
        "known annotations are used: {}",
        still.text
    );
    // The person sets read-only again: the list is read afresh.
    set(&h, &c.grant_id, "read-only").await;
    let r = h.mcp_post(&c.tokens.access, None, &call("get_node")).await;
    assert_eq!(r.json()["error"]["code"], -32003, "{}", r.text);
    h.stop().await;
}

#[tokio::test]
async fn a_2026_07_28_request_obeys_the_same_access_as_a_legacy_one() {
    let (h, c) = connected_with("read-only").await;
    let meta = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28" });
    let modern_call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "put_node", "arguments": {}, "_meta": meta}});
    let post = |body: Value, method: &'static str, name: Option<&'static str>| {
        let mut req = h
            .http
            .post(h.url("/mcp"))
            .bearer_auth(&c.tokens.access)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(n) = name {
            req = req.header("mcp-name", n);
        }
        req.body(body.to_string()).send()
    };
    let r = Reply::read(
        post(modern_call, "tools/call", Some("put_node"))
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], -32003, "{}", r.text);
    assert_eq!(upstream_calls(&h, "put_node"), 0);
    let modern_list =
        json!({"jsonrpc": "2.0", "id": "l2", "method": "tools/list", "params": {"_meta": meta}});
    let r = Reply::read(post(modern_list, "tools/list", None).await.expect("POST")).await;
    assert_eq!(names(&r.json()), ["get_node"], "{}", r.text);
    h.stop().await;
}
