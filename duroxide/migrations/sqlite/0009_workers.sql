-- duroxide SQLite schema, version 9: worker presence, so operators see which runtimes are
-- alive and which tags they serve.

-- One row per running runtime, written by the runtime itself at start and on every
-- heartbeat, deleted on its graceful shutdown. Readers judge liveness from last_seen and
-- heartbeat_ms; gone_at (last_seen + 3 heartbeats) is stored so that writers can delete
-- rows gone for long along an index.
CREATE TABLE workers (
    worker_id TEXT PRIMARY KEY,
    -- The runtime's tag filter as JSON ({"kind":"tags","tags":["gpu"]}).
    tag_filter TEXT NOT NULL,
    activity_slots INTEGER NOT NULL,
    orchestration_slots INTEGER NOT NULL,
    duroxide_version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    gone_at INTEGER NOT NULL
);

CREATE INDEX workers_gone_at ON workers (gone_at);
