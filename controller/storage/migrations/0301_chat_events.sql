-- 0301_chat_events: the event log a conversation's SSE stream replays (gateway-chart.md §1.3).
-- Applied by controller.storage.migrating inside one transaction; never edit once released.

-- One row per streamed event. `seq` is the conversation's own sequence and the SSE event id, so a
-- client that reconnects with Last-Event-ID gets exactly the rows after it. `event_key` names the
-- event within its turn (e.g. "m2/tool.started/c1"), so a retried turn never writes an event twice.
CREATE TABLE chat_events (
    conversation_id text        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL,
    event_key       text        NOT NULL,
    event           text        NOT NULL,
    data            jsonb       NOT NULL,
    turn_id         text,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, seq),
    CONSTRAINT chat_events_conversation_key UNIQUE (conversation_id, event_key)
);
