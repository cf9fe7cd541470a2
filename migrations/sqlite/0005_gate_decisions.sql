-- Every answer a gate hook gave (or failed to give): which hook, at which decision point, what it
-- decided and how long it took. Written in batches off the request path; kept for
-- `hooks.gate_audit_days`.
CREATE TABLE gate_decisions (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    hook        TEXT NOT NULL,
    point       TEXT NOT NULL,
    decision    TEXT NOT NULL,
    hook_code   TEXT,
    message     TEXT,
    failure     TEXT,
    subject     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    decided_at  BIGINT NOT NULL
);
CREATE INDEX gate_decisions_by_tenant ON gate_decisions (tenant_id, decided_at);
CREATE INDEX gate_decisions_by_time ON gate_decisions (decided_at);

-- The decision points an API-deployed gate serves (JSON array of names), resolved at deploy
-- like `events`: its code is compiled lazily, but a request must know its gates at once.
ALTER TABLE tenant_hooks ADD COLUMN gate_points TEXT NOT NULL DEFAULT '[]';
