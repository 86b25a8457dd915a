-- duroxide PostgreSQL schema, version 11: an instance's visible messages are found through
-- one index, whatever else is queued.
--
-- Locking an instance reads its messages visible now (`instance_id = $x AND visible_at <=
-- $now`). With `orchestrator_queue_instance` on `(instance_id, id)` the planner, once the
-- queue's statistics showed instances with several messages each, combined it with
-- `orchestrator_queue_visible` in a bitmap AND: each lookup of one instance then read the
-- index entries of every visible message in the queue, so a backlog made every lock
-- slower, which let the backlog grow further. With both columns in one index the lookup
-- is bounded by the instance alone. The index replaces `orchestrator_queue_instance`
-- (lookups by instance only use its first column; the few rows of one instance are sorted
-- by id where needed), so the queue keeps three indexes.
CREATE INDEX orchestrator_queue_instance_visible ON orchestrator_queue (instance_id, visible_at);
DROP INDEX orchestrator_queue_instance;
