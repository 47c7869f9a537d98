-- Why the upstream refused an account's token, so the app can tell an
-- expired token from a revoked one. NULL while the token is valid.
ALTER TABLE accounts ADD COLUMN rejected_reason TEXT;
