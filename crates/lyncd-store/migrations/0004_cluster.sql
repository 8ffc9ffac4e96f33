-- lyncd schema, version 4: what the nodes of a cluster share besides users.
--
-- Same portability rules as 0001 (one text for SQLite and PostgreSQL): TEXT and BIGINT only,
-- times in unix seconds (UTC).

-- Token keys come in generations so they can be rotated without downtime: the newest active
-- generation signs, older ones keep verifying until the tokens they signed have expired.
-- A generation becomes active at `activates_at`, later than its creation, so every node has
-- loaded it (and verifies with it) before any node signs with it.
CREATE TABLE key_generations (
    generation    BIGINT NOT NULL PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    activates_at  BIGINT NOT NULL
);

-- The keys of one generation (identity provider signing, Web Ticket signing and encryption,
-- Web Ticket wrap key), by name. The CA stays in service_keys: it is not rotated this way.
CREATE TABLE generation_keys (
    generation  BIGINT NOT NULL REFERENCES key_generations (generation) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    material    TEXT   NOT NULL,
    PRIMARY KEY (generation, name)
);

-- Keys a lyncd before version 4 created become generation 1, active since they were created.
INSERT INTO key_generations (generation, created_at, activates_at)
    SELECT 1, MIN(created_at), MIN(created_at) FROM service_keys WHERE name <> 'ca'
    HAVING COUNT(*) > 0;
INSERT INTO generation_keys (generation, name, material)
    SELECT 1, name, material FROM service_keys WHERE name <> 'ca';
DELETE FROM service_keys WHERE name <> 'ca';

-- SIP registrations (bindings), written by the registrar of whichever node the client is
-- connected to before it acknowledges them, so every node sees them and none is lost when a
-- node dies. One row per endpoint (epid) of a user.
CREATE TABLE registrations (
    address_key    TEXT   NOT NULL REFERENCES users (address_key),
    epid           TEXT   NOT NULL,
    instance       TEXT,                 -- +sip.instance UUID, if the client sent one
    contact        TEXT   NOT NULL,      -- the Contact header as the client sent it
    gruu           TEXT   NOT NULL,
    node           TEXT   NOT NULL,      -- the node holding the client's connection
    registered_at  BIGINT NOT NULL,      -- the last REGISTER (first or refresh)
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (address_key, epid)
);

CREATE INDEX registrations_by_expiry ON registrations (expires_at);
CREATE INDEX registrations_by_node ON registrations (node, expires_at);
