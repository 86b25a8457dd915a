-- duroxide SQLite schema, version 6: durable values (key-value state per instance).

-- The current values of each instance, written by the commit of the turn that changed
-- them (from the turn's value events), so clients read a value without loading or
-- replaying the history. The primary key serves reads of one key and of all keys of an
-- instance (in key order).
CREATE TABLE instance_values (
    instance_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (instance_id, key)
);
