-- Sessions (worker affinity). Grows the schema without rewriting old rows: existing work
-- items get session_id NULL, which means "any worker", exactly as before.
ALTER TABLE worker_queue ADD COLUMN session_id TEXT;
CREATE INDEX worker_queue_session ON worker_queue (session_id);

-- Which worker holds each session, until when, and when it was last used.
CREATE TABLE sessions (
    session_id       TEXT PRIMARY KEY NOT NULL,
    worker_id        TEXT NOT NULL,
    locked_until     INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
);
CREATE INDEX sessions_worker ON sessions (worker_id);
