-- Usage exports: one row per requested file. The file itself lives under EXPORT_DIR as `path` (relative).

CREATE TABLE exports (
    id            text PRIMARY KEY,                 -- a random UUID: unguessable, part of the download URL
    requested_by  text NOT NULL,
    filter        jsonb NOT NULL,
    format        text NOT NULL CHECK (format IN ('CSV', 'JSON', 'NDJSON', 'XLSX', 'PARQUET')),
    group_by      text[] NOT NULL,
    status        text NOT NULL DEFAULT 'PENDING'
                  CHECK (status IN ('PENDING', 'RUNNING', 'DONE', 'FAILED', 'EXPIRED')),
    path          text,
    row_count     bigint,
    byte_size     bigint,
    sha256        char(64),
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    expires_at    timestamptz NOT NULL,
    CHECK (group_by <@ ARRAY['DATE', 'USER', 'API_KEY', 'MODEL', 'PROVIDER']::text[])
);

-- "My exports" listings, and the periodic cleanup of the ones not yet expired.
CREATE INDEX exports_requested_by ON exports (requested_by, created_at DESC);
CREATE INDEX exports_expiring ON exports (expires_at) WHERE status <> 'EXPIRED';
