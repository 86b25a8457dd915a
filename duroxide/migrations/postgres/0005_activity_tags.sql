-- duroxide PostgreSQL schema, version 5: activity routing by tag, and what an activity knows
-- of the orchestration that scheduled it.

-- The worker tag an activity is routed to (NULL: untagged work, what every row written
-- before this migration is).
ALTER TABLE worker_queue ADD COLUMN tag TEXT;
-- The orchestration name and version of the execution that scheduled the activity (NULL
-- for work queued before this migration).
ALTER TABLE worker_queue ADD COLUMN orchestration_name TEXT;
ALTER TABLE worker_queue ADD COLUMN orchestration_version TEXT;

-- Fetches filter by tag (`tag IS NULL`, `tag IN (..)`) and then by visibility, oldest
-- first; the per-tag backlog of the store summary groups by it.
CREATE INDEX worker_queue_tag ON worker_queue (tag, visible_at, id);
