-- Delivery per (event, hook): each hook of an event is its own unit of work, so a slow or failing
-- hook delays only itself; one user's events reach each hook in commit order.

-- The user an event is about (NULL if none): the key that orders deliveries.
ALTER TABLE events ADD COLUMN subject TEXT;
-- Set once the event has been fanned out into deliveries (in commit order).
ALTER TABLE events ADD COLUMN fanned_at BIGINT;
-- Events committed before this migration were delivered (or failed) by the old dispatcher.
UPDATE events SET fanned_at = created_at WHERE status <> 'pending';
CREATE INDEX events_unfanned ON events (seq) WHERE fanned_at IS NULL;

CREATE TABLE deliveries (
    -- Fan-out order, which is commit order: the oldest unfinished delivery of a
    -- (tenant, hook, subject) goes first.
    id              BIGSERIAL PRIMARY KEY,
    event_seq       BIGINT NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    hook            TEXT NOT NULL,
    subject         TEXT,
    -- The hook's place in the tenant's hook list at fan-out time (for listings only).
    position        BIGINT NOT NULL,
    -- pending | delivered | failed
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    claim_until     BIGINT,
    last_error      TEXT,
    done_at         BIGINT,
    CONSTRAINT deliveries_event_hook_key UNIQUE (event_seq, hook)
);
-- Claims walk a tenant's unfinished deliveries oldest first.
CREATE INDEX deliveries_due ON deliveries (status, tenant_id, id);
CREATE INDEX deliveries_order ON deliveries (tenant_id, hook, subject, status, id);
-- Settling asks "is anything of this event still pending?" once per outcome; without this,
-- SQLite answers it by scanning every pending delivery.
CREATE INDEX deliveries_event ON deliveries (event_seq, status);
CREATE INDEX deliveries_claims ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;

-- One circuit breaker per (tenant, hook), shared by every replica.
CREATE TABLE hook_circuits (
    tenant_id  TEXT NOT NULL,
    hook       TEXT NOT NULL,
    -- Consecutive failed attempts.
    failures   BIGINT NOT NULL DEFAULT 0,
    is_open    BIGINT NOT NULL DEFAULT 0,
    opened_at  BIGINT,
    -- While open: when the next probe may start, and the pause that led there.
    retry_at   BIGINT,
    pause_ms   BIGINT,
    -- The delivery currently probing the hook, if any.
    probe_id   BIGINT,
    last_error TEXT,
    PRIMARY KEY (tenant_id, hook)
);
