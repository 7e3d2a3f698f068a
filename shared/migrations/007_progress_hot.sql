-- Progress reports (step, progress, updated_at, lease_expires_at) touch no indexed column, so
-- Postgres updates the row in place on its page (a HOT update: no new index entries), given room on
-- the page. The unfinished-documents index was on (status, updated_at); nothing reads it by
-- updated_at (the reconciler orders by lease_expires_at, queued_at and created_at), so it keeps
-- status alone.

DROP INDEX documents_unfinished;
CREATE INDEX documents_unfinished ON documents (status)
    WHERE status IN ('awaiting_upload', 'queued', 'processing');
ALTER TABLE documents SET (fillfactor = 80);
