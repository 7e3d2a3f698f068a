-- Per-tenant statistics of the chunks' words, kept current by triggers on `chunks`: how many chunks
-- hold each lexeme (BM25's document frequency; tells common words from rare ones without probing
-- the index), and each tenant's chunk count and total length (BM25's average chunk length).
-- Chunk rows are only ever inserted and deleted, never updated, so the two triggers keep it exact.
-- A lexeme whose chunks are all gone keeps its row at 0 (bounded by the tenant's vocabulary).

CREATE TABLE chunk_terms (
    tenant_id text NOT NULL,
    lexeme    text NOT NULL,
    chunks    bigint NOT NULL,
    PRIMARY KEY (tenant_id, lexeme)
);

CREATE TABLE chunk_totals (
    tenant_id text PRIMARY KEY,
    chunks    bigint NOT NULL,
    lexemes   bigint NOT NULL  -- sum over chunks of length(tsv), the distinct lexemes of each
);

-- Rows are locked in (tenant, lexeme) order on both paths, so concurrent writers wait for each
-- other instead of deadlocking.
CREATE FUNCTION chunk_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chunk_terms AS t (tenant_id, lexeme, chunks)
    SELECT n.tenant_id, w.lexeme, count(*)
    FROM added n, unnest(n.tsv) w
    GROUP BY n.tenant_id, w.lexeme
    ORDER BY n.tenant_id, w.lexeme
    ON CONFLICT (tenant_id, lexeme) DO UPDATE SET chunks = t.chunks + excluded.chunks;
    INSERT INTO chunk_totals AS t (tenant_id, chunks, lexemes)
    SELECT tenant_id, count(*), sum(length(tsv)) FROM added GROUP BY tenant_id ORDER BY tenant_id
    ON CONFLICT (tenant_id) DO UPDATE
        SET chunks = t.chunks + excluded.chunks, lexemes = t.lexemes + excluded.lexemes;
    RETURN NULL;
END
$$;

CREATE FUNCTION chunk_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        SELECT o.tenant_id, w.lexeme, count(*) AS chunks FROM removed o, unnest(o.tsv) w GROUP BY 1, 2
    ), locked AS MATERIALIZED (
        SELECT t.tenant_id, t.lexeme FROM chunk_terms t JOIN gone USING (tenant_id, lexeme)
        ORDER BY t.tenant_id, t.lexeme FOR UPDATE OF t
    )
    UPDATE chunk_terms t SET chunks = t.chunks - gone.chunks
    FROM gone JOIN locked USING (tenant_id, lexeme)
    WHERE t.tenant_id = gone.tenant_id AND t.lexeme = gone.lexeme;
    UPDATE chunk_totals t SET chunks = t.chunks - o.chunks, lexemes = t.lexemes - o.lexemes
    FROM (SELECT tenant_id, count(*) AS chunks, sum(length(tsv)) AS lexemes FROM removed GROUP BY 1) o
    WHERE t.tenant_id = o.tenant_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER chunks_terms_added AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION chunk_terms_added();
CREATE TRIGGER chunks_terms_removed AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION chunk_terms_removed();

INSERT INTO chunk_terms (tenant_id, lexeme, chunks)
SELECT c.tenant_id, w.lexeme, count(*) FROM chunks c, unnest(c.tsv) w GROUP BY 1, 2;
INSERT INTO chunk_totals (tenant_id, chunks, lexemes)
SELECT tenant_id, count(*), sum(length(tsv)) FROM chunks GROUP BY 1;
