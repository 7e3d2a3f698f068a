-- Chunk sizes are counted in the embedding model's tokens from here on, no longer in characters.
-- Documents keep their chunking for a reindex: their character sizes become tokens at 4.5
-- characters a token (English prose with all-MiniLM-L6-v2's tokenizer), within the model's window
-- of 256 tokens and the floor of 32, overlap at most half the size.
UPDATE documents
SET chunking = jsonb_build_object('chunk_size', s.size, 'overlap', LEAST(s.size / 2, s.overlap))
FROM (
    SELECT id,
           LEAST(256, GREATEST(32, round((chunking ->> 'chunk_size')::numeric / 4.5)::int + 2)) AS size,
           GREATEST(0, round((chunking ->> 'overlap')::numeric / 4.5)::int) AS overlap
    FROM documents
) s
WHERE documents.id = s.id;
