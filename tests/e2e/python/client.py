"""An MCP host written with the official Python SDK (`mcp`), for the e2e tests.

    client.py MCP_URL REDIRECT_URI [--refused-then-allowed]

Connects to MCP_URL with Streamable HTTP and the SDK's OAuthClientProvider
(in-memory token storage), so the SDK does discovery, dynamic registration,
PKCE and the code exchange itself. The host side of the browser step is the
caller's: the redirect handler prints the authorization URL as a JSON line
on stdout, and the callback handler reads the URL the browser was redirected
to (with code, state, iss) as one line from stdin. Then it lists the tools,
calls put_node (with an `author` the server must ignore) and prints one JSON
line with the results. Every stdout line is one JSON object with an "event".
Never prints a token.

With --refused-then-allowed (an assistant granted read-only access): the
put_node is expected to be refused; the client prints the error ("refused"),
then waits for a line on stdin (the person changes the access meanwhile) and
calls put_node again on the same session.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from importlib.metadata import version
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.shared.exceptions import MCPError

CLIENT_NAME = "E2E Python SDK Client"
OVERALL_TIMEOUT_S = 90


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class MemoryStorage(TokenStorage):
    """Tokens and the client registration, in memory only."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def redirect_handler(authorization_url: str) -> None:
    emit("authorize", url=authorization_url)


async def callback_handler() -> AuthorizationCodeResult:
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise RuntimeError("stdin closed before the callback URL arrived")
    query = parse_qs(urlparse(line.strip()).query)
    if "error" in query:
        raise RuntimeError(f"authorization failed: {query['error'][0]}")

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    code = one("code")
    if not code:
        raise RuntimeError("the callback URL carries no code")
    emit("callback", has_code=True, has_state=one("state") is not None, has_iss=one("iss") is not None)
    return AuthorizationCodeResult(code=code, state=one("state"), iss=one("iss"))


def tool_payload(result: object) -> dict[str, object]:
    structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    texts = [c.text for c in getattr(result, "content", []) if getattr(c, "type", None) == "text"]
    return {
        "is_error": bool(getattr(result, "is_error", None) or getattr(result, "isError", None)),
        "structured": structured,
        "text": "\n".join(texts),
    }


async def run(mcp_url: str, redirect_uri: str, refused_then_allowed: bool = False) -> None:
    storage = MemoryStorage()
    oauth = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    # As the SDK documents: bring your own httpx2 client to add auth.
    async with httpx2.AsyncClient(auth=oauth, timeout=httpx2.Timeout(30.0, read=300.0)) as http:
        transport = streamable_http_client(mcp_url, http_client=http)
        async with Client(transport) as client:
            emit(
                "connected",
                server=client.session.server_info.name if client.session.server_info else None,
                protocol_version=client.session.protocol_version,
                token_type=storage.tokens.token_type if storage.tokens else None,
                access_token_prefix=storage.tokens.access_token[:9] if storage.tokens else None,
            )
            listed = await client.list_tools()
            tools = sorted(t.name for t in listed.tools)
            args = {"title": "From the Python SDK", "body": "written by client.py", "author": "mallory"}
            if refused_then_allowed:
                try:
                    await client.call_tool("put_node", args)
                    emit("refused", code=None, message="put_node was not refused")
                except MCPError as e:
                    emit("refused", code=e.code, message=e.message, tools=tools)
                await asyncio.to_thread(sys.stdin.readline)
            put = await client.call_tool("put_node", args)
            emit("result", tools=tools, put_node=tool_payload(put))


async def main() -> int:
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--refused-then-allowed"):
        print(__doc__, file=sys.stderr)
        return 2
    emit("start", mcp_version=version("mcp"))
    try:
        await asyncio.wait_for(run(sys.argv[1], sys.argv[2], len(sys.argv) == 4), OVERALL_TIMEOUT_S)
    except BaseException as e:  # noqa: BLE001 - reported to the test, then exit 1
        emit("error", type=type(e).__name__, message=str(e), trace=traceback.format_exc()[-4000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
