-- API keys get an optional label (what the key is for) and an optional expiry.
ALTER TABLE api_keys ADD COLUMN label text;
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
