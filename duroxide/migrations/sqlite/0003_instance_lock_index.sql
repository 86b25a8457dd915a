-- Turn commits, lock renewals and abandons find their instance by lock token. Without an
-- index each of them scanned every instance ever created. Partial: only locked instances
-- are in it, so it stays small however many instances the store holds.
CREATE INDEX instances_lock ON instances (lock_token) WHERE lock_token IS NOT NULL;
