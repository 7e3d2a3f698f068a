-- Multipart uploads: the bucket's upload id, so completion, cancel and expiry can finish or abort it.
ALTER TABLE documents ADD COLUMN upload_id text;
