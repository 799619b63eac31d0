-- The trace id (32 hex digits, W3C) of the span that wrote an audit row, so an audit trail leads to its trace.
-- Nullable: rows written outside a trace, and every row before this migration, have none.
ALTER TABLE audit_events ADD COLUMN trace_id text;
