-- Tenant hooks deployed through the API, their encrypted secrets, and one revision counter per
-- tenant so every replica sharing this database notices a change (by NOTIFY or by polling).

-- Component bytes, once per distinct component: a component deployed to many tenants is stored
-- (and compiled) once.
CREATE TABLE hook_components (
    sha256     TEXT PRIMARY KEY,
    bytes      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenant_hooks (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL REFERENCES hook_components (sha256),
    -- The manifest as deployed (JSON), and what validation resolved from it and the component.
    manifest   TEXT NOT NULL,
    events     TEXT NOT NULL,
    hook_order BIGINT NOT NULL DEFAULT 0,
    enabled    BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX tenant_hooks_sha256 ON tenant_hooks (sha256);

-- Values are XChaCha20-Poly1305 ciphertexts (nonce || sealed), bound to (tenant, key).
CREATE TABLE hook_secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    sealed     BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE tenant_hook_revisions (
    tenant_id TEXT PRIMARY KEY,
    revision  BIGINT NOT NULL
);
