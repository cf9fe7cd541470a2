-- Provider accounts linked to users (sign-in with OAuth / OpenID Connect). A provider account
-- belongs to at most one user of a tenant, and a user has at most one account per provider
-- (unlinking names the provider alone). Provider tokens are not stored: nothing needs them.
CREATE TABLE oauth_accounts (
    tenant_id        TEXT NOT NULL,
    provider         TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_email   TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider, provider_user_id),
    CONSTRAINT oauth_accounts_one_per_provider UNIQUE (user_id, provider)
);

-- Providers a tenant admin configured through the management API (`PUT {T}/oauth-providers/{name}`),
-- beside those of the server's file. The client secret is sealed like a hook secret.
CREATE TABLE tenant_oauth_providers (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    config        TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
