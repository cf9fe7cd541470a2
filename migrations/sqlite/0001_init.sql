-- Every row belongs to a tenant; times are unix milliseconds (BIGINT) on both backends.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
INSERT INTO tenants (id, created_at) VALUES ('default', 0);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    email           TEXT NOT NULL,
    hashed_password TEXT,
    is_active       BIGINT NOT NULL DEFAULT 1,
    is_verified     BIGINT NOT NULL DEFAULT 0,
    is_superuser    BIGINT NOT NULL DEFAULT 0,
    profile         TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email)
);

CREATE TABLE roles (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE user_roles (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    role_name TEXT NOT NULL,
    PRIMARY KEY (user_id, role_name),
    FOREIGN KEY (tenant_id, role_name) REFERENCES roles (tenant_id, name) ON DELETE CASCADE
);

CREATE TABLE role_permissions (
    tenant_id  TEXT NOT NULL,
    role_name  TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY (tenant_id, role_name, permission),
    FOREIGN KEY (tenant_id, role_name) REFERENCES roles (tenant_id, name) ON DELETE CASCADE
);

-- One row per issued refresh token, stored by SHA-256 digest. A family is one sign-in session.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked    BIGINT NOT NULL DEFAULT 0,
    user_agent TEXT,
    ip_address TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- The blacklist: 'jti:<id>' (one access token) or 'family:<id>' (every token of a session),
-- kept until the last token it could match has expired.
CREATE TABLE revocations (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Email-verification and password-reset tokens, stored by digest, single use.
CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

-- Failed logins per normalised email (known or not), for lockout.
CREATE TABLE login_failures (
    tenant_id        TEXT NOT NULL,
    email            TEXT NOT NULL,
    failures         BIGINT NOT NULL,
    first_failure_at BIGINT NOT NULL,
    locked_until     BIGINT,
    PRIMARY KEY (tenant_id, email)
);

-- The outbox: written in the same transaction as the change an event reports.
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    tenant_id        TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    secret           TEXT,
    context          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    claimed_by       TEXT,
    claim_until      BIGINT,
    pending_handlers TEXT,
    last_error       TEXT,
    delivered_at     BIGINT
);
CREATE INDEX events_due ON events (status, next_attempt_at, seq);
