-- lyncd schema, version 3: per-user sign-in flags, as in Lync's user settings.
--
-- sip_enabled   0: the user exists but may not register (Lync's "not enabled for SIP"; the
--                  registrar answers 404 with ms-diagnostics 4005).
-- remote_access 0: the user may register only from the internal networks ([sip]
--                  internal_networks); from elsewhere 403 with ms-diagnostics-public 4003.
--
-- Existing users keep signing in as before: both default to 1. Same portability rules as
-- 0001: BIGINT 0/1 booleans.

ALTER TABLE users ADD COLUMN sip_enabled BIGINT NOT NULL DEFAULT 1 CHECK (sip_enabled IN (0, 1));
ALTER TABLE users ADD COLUMN remote_access BIGINT NOT NULL DEFAULT 1 CHECK (remote_access IN (0, 1));
