-- 0400_execution_planes: what the kubernetes plane applied (for rollback, install and config
-- re-apply), and the SIMULATED device fleet of the simulated plane (demos and scale benchmarks only).
-- Applied by controller.storage.migrating inside one transaction; never edit once released.

-- Kubernetes plane: one row per apply / rollback / snapshot of a workload. `plane_manifests` comes from
-- 0001; these columns say which image was applied over which, and the ConfigMap data recorded with it.
CREATE SEQUENCE plane_manifests_revision_seq;
ALTER TABLE plane_manifests
    ALTER COLUMN revision SET DEFAULT nextval('plane_manifests_revision_seq'),
    ADD COLUMN action          text NOT NULL DEFAULT 'apply'
        CHECK (action IN ('apply', 'rollback', 'snapshot')),
    ADD COLUMN image           text,
    ADD COLUMN previous_image  text,
    ADD COLUMN config_map      text,
    ADD COLUMN config_data     jsonb,
    ADD COLUMN idempotency_key text;
ALTER SEQUENCE plane_manifests_revision_seq OWNED BY plane_manifests.revision;

-- SIMULATOR. Devices of the simulated plane: no real machine stands behind any row.
-- `draw` is a deterministic number in [0, 1) from (seed, address, version); a device fails its
-- version when `draw` is below the failure rate injected for its app, ring (and version).
CREATE TABLE sim_devices (
    app                   text             NOT NULL,
    ring                  smallint         NOT NULL CHECK (ring BETWEEN 0 AND 4),
    address               text             NOT NULL,
    version               text             NOT NULL,
    previous_version      text,
    artifact              text,
    config_sha256         text,
    applied_config_sha256 text,
    installed             boolean          NOT NULL DEFAULT true,
    healthy               boolean          NOT NULL DEFAULT true,
    draw                  double precision NOT NULL CHECK (draw >= 0 AND draw < 1),
    restarts              integer          NOT NULL DEFAULT 0,
    unavailable_since     timestamptz,
    updated_at            timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (app, address)
);
CREATE INDEX sim_devices_app_ring_idx ON sim_devices (app, ring, version);

-- SIMULATOR. Injected failure rates; version '' applies to every version of the app in that ring.
CREATE TABLE sim_failure_rates (
    app        text             NOT NULL,
    ring       smallint         NOT NULL CHECK (ring BETWEEN 0 AND 4),
    version    text             NOT NULL DEFAULT '',
    rate       double precision NOT NULL CHECK (rate >= 0 AND rate <= 1),
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (app, ring, version)
);
