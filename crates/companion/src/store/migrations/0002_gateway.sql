-- MCP sessions, bound to the principal (grant or direct-PAT account) that
-- created them; ids are hashed like every other bearer-ish value.
CREATE TABLE mcp_sessions (
    session_hash TEXT PRIMARY KEY,
    principal    TEXT NOT NULL,           -- 'grant:<id>' or 'pat:<account id>'
    created_at   INTEGER NOT NULL
);

-- One row per forwarded JSON-RPC message: what, not the arguments or results.
CREATE TABLE mcp_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    grant_id    TEXT,                     -- NULL for direct-PAT calls
    account_id  TEXT,
    method      TEXT NOT NULL,
    tool        TEXT,
    outcome     TEXT NOT NULL,
    status      INTEGER,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX mcp_calls_grant ON mcp_calls (grant_id, id);
CREATE INDEX mcp_calls_at ON mcp_calls (at);
