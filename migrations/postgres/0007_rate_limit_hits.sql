-- Rate-limit hits shared by every replica (PostgreSQL; SQLite, one process, counts in memory
-- and leaves this table empty). One row per counted request; a key is "bucket:client-ip".
-- Rows older than the window are deleted as the key is checked, and by the periodic prune.
CREATE UNLOGGED TABLE rate_limit_hits (
    key TEXT   NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX rate_limit_hits_by_key ON rate_limit_hits (key, at);
CREATE INDEX rate_limit_hits_by_time ON rate_limit_hits (at);

-- One check as one round trip: lock the key for the transaction (so replicas counting the same
-- client queue instead of both slipping under the limit), forget hits older than the window,
-- and count this one unless the window is full. Returns -1 when counted, else the milliseconds
-- until the oldest hit leaves the window.
CREATE FUNCTION hookauth_count_rate_limited(p_key TEXT, p_limit BIGINT, p_window BIGINT, p_now BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    hits BIGINT;
    oldest BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(29292, hashtext(p_key));
    DELETE FROM rate_limit_hits WHERE key = p_key AND at <= p_now - p_window;
    SELECT COUNT(*), MIN(at) INTO hits, oldest FROM rate_limit_hits WHERE key = p_key;
    IF hits >= p_limit THEN
        RETURN GREATEST(COALESCE(oldest + p_window - p_now, p_window), 0);
    END IF;
    INSERT INTO rate_limit_hits (key, at) VALUES (p_key, p_now);
    RETURN -1;
END
$$;
