-- TOTP second factor, one per user. The secret is sealed like a hook secret (bound to the
-- tenant and the user), so a database dump alone does not hand out working authenticators.
-- A row with confirmed_at NULL is an enrolment in progress and never gates a sign-in.
CREATE TABLE mfa_credentials (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    confirmed_at BIGINT,
    -- The last accepted time step; a code is refused unless its step is greater, so no code
    -- is accepted twice (not even by two requests at once: one UPDATE wins).
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

-- Recovery codes by SHA-256 digest, each deleted when used.
CREATE TABLE mfa_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
