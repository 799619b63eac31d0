-- 0001_foundation: audit trail, idempotency claims, evidence packs, plane manifests, chat transcripts.
-- Applied by controller.storage.migrating inside one transaction; never edit once released.

-- Raised by the triggers below: rows of append-only and immutable tables can't change or go away.
CREATE FUNCTION ringpilot_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Audit events: who did what to which object, under which correlation ID. Append-only (domain §8).
CREATE TABLE audit_events (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    correlation_id text        NOT NULL,
    actor          text        NOT NULL,
    actor_role     text,
    kind           text,
    namespace      text,
    name           text,
    action         text        NOT NULL,
    reason         text,
    detail         jsonb
);
CREATE INDEX audit_events_correlation_id_idx ON audit_events (correlation_id, id);
CREATE INDEX audit_events_object_idx ON audit_events (namespace, kind, name, id);
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ringpilot_forbid_change();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION ringpilot_forbid_change();

-- Step claims: the first INSERT ... ON CONFLICT DO NOTHING on a natural key wins the step.
CREATE TABLE step_claims (
    key            text        PRIMARY KEY,
    correlation_id text        NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now(),
    owner          text        NOT NULL,
    outcome        jsonb,
    finished_at    timestamptz
);
CREATE INDEX step_claims_correlation_id_idx ON step_claims (correlation_id);

-- Evidence packs: immutable once written; the SHA-256 is computed by the writer over canonical JSON.
CREATE TABLE evidence_packs (
    id             uuid        PRIMARY KEY,
    correlation_id text        NOT NULL,
    task           text,
    sha256         text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    body           jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evidence_packs_correlation_id_idx ON evidence_packs (correlation_id);
CREATE TRIGGER evidence_packs_immutable
    BEFORE UPDATE OR DELETE ON evidence_packs
    FOR EACH ROW EXECUTE FUNCTION ringpilot_forbid_change();
CREATE TRIGGER evidence_packs_no_truncate
    BEFORE TRUNCATE ON evidence_packs
    FOR EACH STATEMENT EXECUTE FUNCTION ringpilot_forbid_change();

-- Plane manifests: what an execution plane last applied, so `install` can re-create a workload.
CREATE TABLE plane_manifests (
    namespace   text        NOT NULL,
    name        text        NOT NULL,
    app         text        NOT NULL,
    revision    bigint      NOT NULL,
    manifest    jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, name, revision)
);

-- Conversations and their full transcripts (the CR only holds the last reply).
CREATE TABLE conversations (
    id             text        PRIMARY KEY,
    namespace      text        NOT NULL,
    name           text        NOT NULL,
    user_id        text        NOT NULL,
    correlation_id text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_object_idx ON conversations (namespace, name);

CREATE TABLE messages (
    conversation_id text        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL,
    message_id      text,
    role            text        NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content         jsonb       NOT NULL,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Also the index for "last N messages of a conversation" (ORDER BY seq DESC LIMIT N).
    CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq)
);
-- A user turn (spec.messages[].id) is stored once, however often the turn is retried.
CREATE UNIQUE INDEX messages_conversation_message_id_key
    ON messages (conversation_id, message_id) WHERE message_id IS NOT NULL;
