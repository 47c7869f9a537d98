-- What each assistant may do with the account's tools, chosen at consent:
-- 'full', 'read_only', or 'tools:' followed by a JSON array of tool names.
-- Codes carry the choice from the consent to the grant they create. Grants
-- from before this was recorded keep what they had: everything.
ALTER TABLE auth_codes ADD COLUMN access TEXT NOT NULL DEFAULT 'full';
ALTER TABLE grants ADD COLUMN access TEXT NOT NULL DEFAULT 'full';
