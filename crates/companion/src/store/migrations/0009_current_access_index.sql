-- A refresh marks the grant's current access token superseded. With only
-- the (grant_id) index that visited every token the grant was ever issued
-- (one per refresh, kept until they expire), so each refresh of a
-- long-lived grant got slower; this index holds just the current ones.
CREATE INDEX access_tokens_current ON access_tokens (grant_id) WHERE superseded_at IS NULL;
