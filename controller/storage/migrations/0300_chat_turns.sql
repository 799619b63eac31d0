-- 0300_chat_turns: what the conversation engine needs beyond 0001's conversations and messages.
-- Applied by controller.storage.migrating inside one transaction; never edit once released.

-- Which user turn (spec.messages[].id) an assistant or tool message belongs to, so a retried turn
-- resumes from the rounds already stored instead of starting over.
ALTER TABLE messages ADD COLUMN turn_id text;
CREATE INDEX messages_conversation_turn_idx
    ON messages (conversation_id, turn_id, seq) WHERE turn_id IS NOT NULL;

-- One row per user turn: its progress, transient-failure attempts and the time of the next try.
CREATE TABLE chat_turns (
    conversation_id text        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('running', 'delayed', 'answered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    error_reason    text,
    error_message   text,
    correlation_id  text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, message_id)
);

-- Every tool call the model (or a confirmation) made: arguments, the permission it needed, outcome.
CREATE TABLE chat_tool_calls (
    conversation_id text        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    call_id         text        NOT NULL,
    turn_id         text        NOT NULL,
    tool            text        NOT NULL,
    arguments       jsonb       NOT NULL,
    permission      text        NOT NULL,
    mutating        boolean     NOT NULL,
    outcome         text        NOT NULL
        CHECK (outcome IN ('ok', 'error', 'denied', 'proposed', 'executed', 'declined')),
    result          jsonb,
    duration_ms     integer     NOT NULL DEFAULT 0,
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, call_id)
);
CREATE INDEX chat_tool_calls_errors_idx
    ON chat_tool_calls (conversation_id, created_at DESC) WHERE outcome IN ('error', 'denied');

-- Custom resources a conversation created (the CR's status.resources mirrors the newest ones).
CREATE TABLE chat_resources (
    conversation_id text        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind            text        NOT NULL,
    namespace       text        NOT NULL,
    name            text        NOT NULL,
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, kind, namespace, name)
);
