-- duroxide PostgreSQL schema, version 8: the queues are vacuumed as often as they churn.
--
-- Both queues hold few live rows but see an insert and a delete per message; with the
-- default thresholds (20 % of the table) autovacuum waits while dead rows pile up at the
-- head of the queue indexes, and every fetch walks them. Vacuum after a fixed number of
-- dead rows instead, without cost-based pauses (the tables are small).
ALTER TABLE orchestrator_queue SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 1000
);
ALTER TABLE worker_queue SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 1000
);
