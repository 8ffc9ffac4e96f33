-- lyncd schema, version 2: user certificates issued by the Certificate Provisioning service.
--
-- Same portability rules as 0001: TEXT and BIGINT only, times in unix seconds (UTC).

CREATE TABLE issued_certificates (
    serial_hex   TEXT   NOT NULL PRIMARY KEY,              -- lower-case hex, no separators
    address_key  TEXT   NOT NULL REFERENCES users (address_key),
    device_id    TEXT,                                     -- the client's DeviceId, if sent
    sha256_hex   TEXT   NOT NULL,                          -- fingerprint of the DER certificate
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    issued_at    BIGINT NOT NULL
);

CREATE INDEX issued_certificates_by_user ON issued_certificates (address_key, issued_at);
