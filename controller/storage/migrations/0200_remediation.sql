-- 0200_remediation: the remediation ledger (controller/remediation/ledger.py).
-- Applied by controller.storage.migrating inside one transaction; never edit once released.

-- Every Remediation the controller has seen, and the ones the drift loop opened itself: a Remediation
-- claiming requestedBy=system:ringpilot must have a row here with opened_by_loop, or it is a person's.
CREATE TABLE remediation_records (
    namespace      text        NOT NULL,
    name           text        NOT NULL,
    uid            text,
    assignment_uid text,
    drift_type     text,
    correlation_id text        NOT NULL,
    opened_by_loop boolean     NOT NULL DEFAULT false,
    dry_run        boolean     NOT NULL DEFAULT false,
    phase          text        NOT NULL DEFAULT 'Pending',
    opened_at      timestamptz NOT NULL,
    closed_at      timestamptz,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX remediation_records_assignment_idx ON remediation_records (assignment_uid, opened_at);

-- Attempts at fixing one drift type of one Assignment, across Remediations: the anti-thrash counter,
-- backoff, flapping and the concurrency and hourly limits all read this table.
CREATE TABLE remediation_attempts (
    id              bigserial   PRIMARY KEY,
    assignment_uid  text        NOT NULL,
    drift_type      text        NOT NULL,
    number          integer     NOT NULL CHECK (number >= 1),
    remediation_uid text        NOT NULL,
    remediation     text        NOT NULL,
    app             text        NOT NULL,
    ring            smallint    NOT NULL CHECK (ring BETWEEN 0 AND 4),
    action          text        NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    outcome         text        NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'verified', 'failed')),
    CONSTRAINT remediation_attempts_once UNIQUE (remediation_uid, number)
);
CREATE INDEX remediation_attempts_assignment_idx ON remediation_attempts (assignment_uid, started_at);
CREATE INDEX remediation_attempts_started_idx ON remediation_attempts (started_at);

-- When an Assignment last completed a full check interval in sync: attempts before it no longer count.
CREATE TABLE drift_counter_resets (
    assignment_uid text        PRIMARY KEY,
    reset_at       timestamptz NOT NULL
);
