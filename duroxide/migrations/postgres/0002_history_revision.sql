-- A node that keeps an instance in memory between turns skips reading its history when the
-- stored length matches its own. A history row changed or removed in place (corruption, a
-- hand edit, a restore) keeps the length, so every such change raises the instance's
-- history_rev, and the node reads the history again when the revision is not the one it
-- saw. Appending events (the normal path) fires nothing. Statement-level, so deleting the
-- histories of many instances at once costs one update per instance, not per row.
ALTER TABLE instances ADD COLUMN history_rev BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION history_rows_touched() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE instances SET history_rev = history_rev + 1
    WHERE instance_id IN (SELECT DISTINCT instance_id FROM touched_rows);
    RETURN NULL;
END
$$;

CREATE TRIGGER history_rows_changed AFTER UPDATE ON history
REFERENCING OLD TABLE AS touched_rows
FOR EACH STATEMENT EXECUTE FUNCTION history_rows_touched();

CREATE TRIGGER history_rows_removed AFTER DELETE ON history
REFERENCING OLD TABLE AS touched_rows
FOR EACH STATEMENT EXECUTE FUNCTION history_rows_touched();
