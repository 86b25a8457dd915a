-- duroxide PostgreSQL schema, version 9: a row lookup whose plan does not depend on the
-- tables' statistics.
--
-- A store's connections prepare their statements while its tables are young, and the
-- server keeps a statement's generic plan until the table is analyzed again. For a table
-- that has never been analyzed the planner assumes a few pages, and against those an
-- update that joins `instances` with a set of row addresses is cheapest as a hash join over
-- a sequential scan; the plan then stays, walking every instance on every lock once the
-- table has grown. Joining the addresses through this function, which the planner is told
-- returns one row, makes each row a lookup of its own (by primary key, the address checked
-- on the row) whatever the statistics say.
CREATE FUNCTION rows_by_address(addresses tid[]) RETURNS SETOF tid
LANGUAGE plpgsql IMMUTABLE STRICT ROWS 1 AS $$
BEGIN
    RETURN QUERY SELECT UNNEST(addresses);
END
$$;
