-- Tenants, their API keys, documents and their chunks.
-- {embedding_dimensions} is filled in from settings when the migration is applied.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenants (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash   text NOT NULL UNIQUE,  -- sha256 of the key; the key itself is shown once
    prefix     text NOT NULL,         -- first characters, to tell keys apart in listings
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE documents (
    id               uuid PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    filename         text NOT NULL,
    file_type        text NOT NULL,
    content_type     text NOT NULL,
    size             bigint,
    sha256           text,
    object_key       text NOT NULL UNIQUE,
    etag             text,
    status           text NOT NULL CHECK (status IN
                         ('awaiting_upload', 'queued', 'processing', 'indexed', 'failed', 'cancelled', 'expired')),
    step             text CHECK (step IN ('downloading', 'extracting', 'chunking', 'embedding', 'storing')),
    progress         smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    chunk_count      integer NOT NULL DEFAULT 0,
    error_code       text,
    error_message    text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    chunking         jsonb NOT NULL,
    task_id          uuid UNIQUE,
    attempts         integer NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    upload_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    queued_at        timestamptz,
    indexed_at       timestamptz
);

CREATE INDEX documents_tenant_created ON documents (tenant_id, created_at DESC, id DESC);
CREATE INDEX documents_tenant_status ON documents (tenant_id, status);
CREATE INDEX documents_unfinished ON documents (status, updated_at)
    WHERE status IN ('awaiting_upload', 'queued', 'processing');
CREATE INDEX documents_metadata ON documents USING gin (metadata jsonb_path_ops);

CREATE TABLE chunks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    tenant_id    text NOT NULL,
    ordinal      integer NOT NULL,
    text         text NOT NULL,
    page         integer,
    metadata     jsonb NOT NULL DEFAULT '{}',
    embedding    vector({embedding_dimensions}) NOT NULL,
    tsv          tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    UNIQUE (document_id, ordinal)
);

CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_tenant ON chunks (tenant_id);
