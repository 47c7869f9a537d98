-- Registered OAuth clients (RFC 7591 public clients).
CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,          -- JSON array of strings
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);

-- One row per (server, org): metadata only, the PAT lives in the secret store.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('spor', 'generic')),
    rest_base   TEXT NOT NULL,
    mcp_url     TEXT NOT NULL,
    org         TEXT NOT NULL,
    person      TEXT,
    name        TEXT,
    email       TEXT,
    bound       INTEGER NOT NULL,
    is_admin    INTEGER NOT NULL,
    pat_hash    TEXT NOT NULL,            -- SHA-256 of the PAT, for direct-bearer lookup
    status      TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'rejected')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (rest_base, org)
);
CREATE UNIQUE INDEX accounts_pat_hash ON accounts (pat_hash);

-- A grant is one connected assistant: one client acting as one account.
CREATE TABLE grants (
    id            TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL REFERENCES clients (id),
    account_id    TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    scope         TEXT NOT NULL,
    resource      TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX grants_account ON grants (account_id);

-- Authorization codes, single use, hashed.
CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    redirect_sent  INTEGER NOT NULL,      -- whether the request named it (then the exchange must repeat it)
    code_challenge TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resource       TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    grant_id       TEXT REFERENCES grants (id) ON DELETE SET NULL
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);

-- Refresh tokens with their rotation lineage. `successor_sealed` holds the
-- successor pair encrypted under a key derived from this (unstored) token, only
-- for the short race-grace window.
CREATE TABLE refresh_tokens (
    token_hash       TEXT PRIMARY KEY,
    grant_id         TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    parent_hash      TEXT REFERENCES refresh_tokens (token_hash) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER,
    successor_hash   TEXT,
    successor_sealed BLOB
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- What happened, never with secrets, arguments or results.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    grant_id   TEXT,
    account_id TEXT,
    client_id  TEXT,
    detail     TEXT
);
CREATE INDEX audit_grant ON audit (grant_id, at);
