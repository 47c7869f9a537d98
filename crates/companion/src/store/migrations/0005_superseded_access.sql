-- When a refresh replaced an access token. It keeps working only a short
-- grace after that (Limits::superseded_access_grace); NULL while it is the
-- grant's newest.
ALTER TABLE access_tokens ADD COLUMN superseded_at INTEGER;

-- Tokens replaced before this column existed: each was superseded when the
-- next one of its grant was issued (rowids follow insertion order); the
-- same grace runs from then as for tokens replaced from now on.
UPDATE access_tokens SET superseded_at = (
    SELECT n.created_at FROM access_tokens n
    WHERE n.grant_id = access_tokens.grant_id AND n.rowid > access_tokens.rowid
    ORDER BY n.rowid LIMIT 1
)
WHERE EXISTS (
    SELECT 1 FROM access_tokens n
    WHERE n.grant_id = access_tokens.grant_id AND n.rowid > access_tokens.rowid
);
