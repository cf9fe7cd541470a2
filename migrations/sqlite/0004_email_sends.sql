-- Verification and reset emails sent per account and purpose in the current window, so a flood
-- of requests (from any number of addresses, through any replica) sends at most the configured
-- number of emails to one mailbox.
CREATE TABLE email_sends (
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      TEXT NOT NULL,
    sent         BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, purpose)
);
