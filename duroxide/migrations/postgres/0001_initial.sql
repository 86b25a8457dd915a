-- duroxide PostgreSQL schema, version 1.
-- Applied inside the provider's schema (search_path is set on every connection), so the
-- table names are unqualified. Times are milliseconds since the Unix epoch.

-- One row per instance: identity, pinned versions, lifecycle and the instance lock.
CREATE TABLE instances (
    instance_id      TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    version          TEXT,
    execution_id     BIGINT NOT NULL DEFAULT 0,
    state            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    custom_status    TEXT,
    parent_instance  TEXT,
    duroxide_version TEXT,
    -- duroxide_version as a sortable integer (see provider::version_key), for fetch filters.
    duroxide_version_key BIGINT,
    status_note      TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    lock_token       TEXT,
    locked_until     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX instances_lock ON instances (lock_token);
CREATE INDEX instances_created ON instances (created_at, instance_id);

-- One row per execution (continue-as-new starts a new one).
CREATE TABLE executions (
    instance_id      TEXT NOT NULL,
    execution_id     BIGINT NOT NULL,
    version          TEXT NOT NULL,
    state            TEXT NOT NULL,
    duroxide_version TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (instance_id, execution_id)
);

-- The history log. The primary key makes a duplicate event impossible. `data` is TEXT,
-- not JSONB, so the stored bytes are exactly what duroxide wrote.
CREATE TABLE history (
    instance_id  TEXT NOT NULL,
    execution_id BIGINT NOT NULL,
    event_id     BIGINT NOT NULL,
    event_type   TEXT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, event_id)
);

-- Messages for orchestration instances. Locked through the instance lock.
CREATE TABLE orchestrator_queue (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    message       TEXT NOT NULL,
    visible_at    BIGINT NOT NULL,
    lock_token    TEXT,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    enqueued_at   BIGINT NOT NULL
);
CREATE INDEX orchestrator_queue_visible ON orchestrator_queue (visible_at, id);
CREATE INDEX orchestrator_queue_instance ON orchestrator_queue (instance_id, id);
CREATE INDEX orchestrator_queue_lock ON orchestrator_queue (lock_token);

-- Activity work, peek-locked by workers.
CREATE TABLE worker_queue (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id      TEXT NOT NULL,
    execution_id     BIGINT NOT NULL,
    event_id         BIGINT NOT NULL,
    name             TEXT NOT NULL,
    input            TEXT NOT NULL,
    visible_at       BIGINT NOT NULL,
    lock_token       TEXT,
    locked_until     BIGINT NOT NULL DEFAULT 0,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    -- The session the activity must run on (NULL: any worker).
    session_id       TEXT,
    UNIQUE (instance_id, execution_id, event_id)
);
CREATE INDEX worker_queue_visible ON worker_queue (visible_at, id);
CREATE INDEX worker_queue_lock ON worker_queue (lock_token);
CREATE INDEX worker_queue_session ON worker_queue (session_id);

-- Which worker holds each session, until when, and when it was last used.
CREATE TABLE sessions (
    session_id       TEXT PRIMARY KEY,
    worker_id        TEXT NOT NULL,
    locked_until     BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL
);
CREATE INDEX sessions_worker ON sessions (worker_id);
