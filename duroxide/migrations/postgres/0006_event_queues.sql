-- duroxide PostgreSQL schema: event queues and progress status.

-- Raised by one for every custom status change a turn records (each CustomStatusSet
-- event), so a client can wait for "a change after version N" without comparing payloads.
-- Read with the instance row (by primary key); no index needed.
ALTER TABLE instances ADD COLUMN custom_status_version BIGINT NOT NULL DEFAULT 0;
