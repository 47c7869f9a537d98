-- The protocol era of each logged call ('legacy': initialize and sessions,
-- 2025-11-25 and before; 'modern': per-request _meta, 2026-07-28 on), and
-- whether its mirrored Mcp-* headers agreed with its body ('consistent',
-- 'missing', 'mismatch'). NULL for calls logged before this was recorded,
-- and for the header check of legacy calls that mirrored nothing.
ALTER TABLE mcp_calls ADD COLUMN era TEXT;
ALTER TABLE mcp_calls ADD COLUMN header_check TEXT;
