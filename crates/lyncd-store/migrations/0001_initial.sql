-- lyncd schema, version 1.
--
-- One text for SQLite and PostgreSQL (sqlx Any driver): only TEXT and BIGINT columns;
-- booleans are BIGINT 0/1 and times are unix seconds (UTC) in BIGINT.

CREATE TABLE tenants (
    domain      TEXT   NOT NULL PRIMARY KEY,  -- lower-cased DNS name
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    address_key    TEXT   NOT NULL PRIMARY KEY,  -- lower-cased user@domain (SipAddress::key)
    address        TEXT   NOT NULL,              -- user@domain as entered, for display
    domain         TEXT   NOT NULL REFERENCES tenants (domain),
    display_name   TEXT,
    object_id      TEXT   NOT NULL UNIQUE,
    enabled        BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    password_hash  TEXT   NOT NULL,              -- argon2 PHC string
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE INDEX users_by_domain ON users (domain, address_key);

-- Key material shared by services (and, later, by cluster nodes): first writer wins.
CREATE TABLE service_keys (
    name        TEXT   NOT NULL PRIMARY KEY,
    material    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
