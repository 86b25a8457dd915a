-- duroxide PostgreSQL schema, version 10: taking and releasing a lock writes no index.
--
-- An instance lock token names its instance (`<uuid>.<instance id>`), and every statement
-- that takes a token finds the instance by primary key and its queued messages through
-- `orchestrator_queue_instance`, checking the token on the row. So `lock_token` needs no
-- index on either table, and an update that only locks, renews or releases changes no
-- indexed column: PostgreSQL can then write the new row version into the same page
-- without touching any index (a HOT update), where before every lock wrote an entry into
-- each of the table's indexes (nine on `instances`). Older versions of duroxide look
-- their own tokens up by value; during a rolling upgrade their lookups still work, as
-- scans instead of index lookups, until they are stopped.
DROP INDEX instances_lock;
DROP INDEX orchestrator_queue_lock;
