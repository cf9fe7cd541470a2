-- Rate-limit hits shared by every replica (PostgreSQL; SQLite, one process, counts in memory
-- and leaves this table empty). One row per counted request; a key is "bucket:client-ip".
-- Rows older than the window are deleted as the key is checked, and by the periodic prune.
CREATE TABLE rate_limit_hits (
    key TEXT   NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX rate_limit_hits_by_key ON rate_limit_hits (key, at);
CREATE INDEX rate_limit_hits_by_time ON rate_limit_hits (at);
