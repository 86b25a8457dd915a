-- duroxide SQLite schema, version 1.

-- One row per instance: identity, pinned versions, lifecycle and the instance lock.
CREATE TABLE instances (
    instance_id      TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    version          TEXT,
    execution_id     INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    custom_status    TEXT,
    parent_instance  TEXT,
    duroxide_version TEXT,
    -- duroxide_version as a sortable integer (see provider::version_key), for fetch filters.
    duroxide_version_key INTEGER,
    status_note      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    lock_token       TEXT,
    locked_until     INTEGER NOT NULL DEFAULT 0
);

-- One row per execution (continue-as-new starts a new one).
CREATE TABLE executions (
    instance_id      TEXT NOT NULL,
    execution_id     INTEGER NOT NULL,
    version          TEXT NOT NULL,
    state            TEXT NOT NULL,
    duroxide_version TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (instance_id, execution_id)
);

-- The history log. The primary key makes a duplicate event impossible.
CREATE TABLE history (
    instance_id  TEXT NOT NULL,
    execution_id INTEGER NOT NULL,
    event_id     INTEGER NOT NULL,
    event_type   TEXT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, event_id)
);

-- Messages for orchestration instances. Locked through the instance lock.
CREATE TABLE orchestrator_queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id   TEXT NOT NULL,
    message       TEXT NOT NULL,
    visible_at    INTEGER NOT NULL,
    lock_token    TEXT,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    enqueued_at   INTEGER NOT NULL
);
CREATE INDEX orchestrator_queue_visible ON orchestrator_queue (visible_at, id);
CREATE INDEX orchestrator_queue_instance ON orchestrator_queue (instance_id, id);
CREATE INDEX orchestrator_queue_lock ON orchestrator_queue (lock_token);

-- Activity work, peek-locked by workers.
CREATE TABLE worker_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id      TEXT NOT NULL,
    execution_id     INTEGER NOT NULL,
    event_id         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    input            TEXT NOT NULL,
    visible_at       INTEGER NOT NULL,
    lock_token       TEXT,
    locked_until     INTEGER NOT NULL DEFAULT 0,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    UNIQUE (instance_id, execution_id, event_id)
);
CREATE INDEX worker_queue_visible ON worker_queue (visible_at, id);
CREATE INDEX worker_queue_lock ON worker_queue (lock_token);
