-- 0100_orchestration: what each DeploymentTask changed on each target, so a rollback touches exactly
-- that, and an `action: Rollback` task finds the previous recorded version of an app.
-- Applied by controller.storage.migrating inside one transaction; never edit once released.

-- One row per target a Deploy or Rollback step acted on (target '*' = a whole simulated ring, whose
-- `changed` is then a count). Written by the worker after the plane call; a repeated attempt of the
-- same step (same step_key) adds nothing. Append-only like the audit trail.
CREATE TABLE rollout_history (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    correlation_id text        NOT NULL,
    task           text        NOT NULL,
    task_uid       text        NOT NULL,
    app            text        NOT NULL,
    plane          text        NOT NULL,
    ring           smallint    NOT NULL CHECK (ring BETWEEN 0 AND 4),
    target         text        NOT NULL,
    namespace      text,
    name           text,
    address        text,
    action         text        NOT NULL CHECK (action IN ('deploy', 'rollback')),
    from_version   text,
    to_version     text,
    changed        integer     NOT NULL DEFAULT 0 CHECK (changed >= 0),
    step_key       text        NOT NULL,
    CONSTRAINT rollout_history_step_target_key UNIQUE (step_key, target)
);
CREATE INDEX rollout_history_target_idx ON rollout_history (app, plane, ring, target, id);
CREATE INDEX rollout_history_task_idx ON rollout_history (correlation_id, task_uid, action, ring);
CREATE TRIGGER rollout_history_append_only
    BEFORE UPDATE OR DELETE ON rollout_history
    FOR EACH ROW EXECUTE FUNCTION ringpilot_forbid_change();
