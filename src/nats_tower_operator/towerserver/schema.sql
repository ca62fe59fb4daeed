-- SQLite schema of the Tower-compatible server: one table per PocketBase collection.
-- Relations are plain ids (PocketBase style, '' = none); children are removed by the service
-- layer inside the same transaction as their parent.

CREATE TABLE IF NOT EXISTS nats_auth_operators (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    public_key TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL DEFAULT '',
    jwt TEXT NOT NULL DEFAULT '',
    system_account TEXT NOT NULL DEFAULT '',
    sign_seed TEXT NOT NULL,
    system_user_creds TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS nats_auth_accounts (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL REFERENCES nats_auth_operators (id),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    jwt TEXT NOT NULL,
    user_jwt_ttl INTEGER NOT NULL DEFAULT 0,
    sign_seed TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (operator, name)
);

CREATE TABLE IF NOT EXISTS nats_auth_signing_keys (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES nats_auth_accounts (id),
    role TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    publish TEXT NOT NULL DEFAULT '[]',
    subscribe TEXT NOT NULL DEFAULT '[]',
    public_key TEXT NOT NULL UNIQUE,
    sign_seed TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (account, role)
);

CREATE TABLE IF NOT EXISTS nats_auth_users (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES nats_auth_accounts (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    signing_key TEXT NOT NULL DEFAULT '',
    public_key TEXT NOT NULL UNIQUE,
    jwt TEXT NOT NULL CHECK (jwt != ''),
    seed TEXT NOT NULL CHECK (seed != ''),
    creds TEXT NOT NULL CHECK (creds != ''),
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (account, name)
);

CREATE TABLE IF NOT EXISTS nats_auth_k8s_access (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES nats_auth_accounts (id),
    cluster TEXT NOT NULL,
    namespace TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (account, cluster, namespace)
);

-- Revoked user public keys per account (carried in the account JWT's "revocations").
CREATE TABLE IF NOT EXISTS nats_auth_revocations (
    account TEXT NOT NULL REFERENCES nats_auth_accounts (id),
    public_key TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (account, public_key)
);

-- Extra API tokens (values start with "nt_"), accepted like the configured token.
CREATE TABLE IF NOT EXISTS nats_auth_api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    token TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
