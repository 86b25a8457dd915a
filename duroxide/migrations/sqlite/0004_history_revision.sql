-- A node that keeps an instance in memory between turns skips reading its history when the
-- stored length matches its own. A history row changed or removed in place (corruption, a
-- hand edit, a restore) keeps the length, so every such change raises the instance's
-- history_rev, and the node reads the history again when the revision is not the one it
-- saw. Appending events (the normal path) fires nothing.
ALTER TABLE instances ADD COLUMN history_rev INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER history_row_changed AFTER UPDATE ON history
BEGIN
    UPDATE instances SET history_rev = history_rev + 1 WHERE instance_id = OLD.instance_id;
END;

CREATE TRIGGER history_row_removed AFTER DELETE ON history
BEGIN
    UPDATE instances SET history_rev = history_rev + 1 WHERE instance_id = OLD.instance_id;
END;
