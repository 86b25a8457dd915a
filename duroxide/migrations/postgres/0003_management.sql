-- duroxide PostgreSQL schema, version 3: the management API.

-- Which worker holds an activity (shown by describe; NULL for work a turn handed straight
-- to a worker of its own node).
ALTER TABLE worker_queue ADD COLUMN locked_by TEXT;

-- One index for every field an operator filters on, each ending in the listing order
-- (created_at, instance_id) so a filtered page is read in order and stops at its limit.
-- (instances_created exists since version 1.)
CREATE INDEX instances_state ON instances (state, created_at, instance_id);
CREATE INDEX instances_name ON instances (name, created_at, instance_id);
CREATE INDEX instances_version ON instances (version, created_at, instance_id);
CREATE INDEX instances_parent ON instances (parent_instance, created_at, instance_id)
    WHERE parent_instance IS NOT NULL;
-- Update-time ranges ("finished before T"). Queries without a state filter name all four
-- states, so this one index serves them too.
CREATE INDEX instances_state_updated ON instances (state, updated_at);
-- Id prefixes compare byte by byte, whatever the database's collation.
CREATE INDEX instances_id_bytewise ON instances (instance_id COLLATE "C");
