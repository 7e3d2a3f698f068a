-- OCR of scanned pages and images is its own pipeline step, between extracting and chunking.
ALTER TABLE documents DROP CONSTRAINT documents_step_check;
ALTER TABLE documents ADD CONSTRAINT documents_step_check
    CHECK (step IN ('downloading', 'extracting', 'ocr', 'chunking', 'embedding', 'storing'));
