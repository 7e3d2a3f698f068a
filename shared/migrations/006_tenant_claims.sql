-- When a worker last took one of the tenant's documents: claims go round-robin between tenants.
ALTER TABLE tenants ADD COLUMN last_claimed_at timestamptz;
