"""Tokenization of real text with the ``tokenizers`` library, kept beside the dataset.

Either a WordPiece tokenizer trained here on the *training split's* texts only (test texts
never shape the vocabulary), or a ``tokenizer.json`` the user gives (any tokenizer saved by
``tokenizers`` or a Hugging Face ``tokenizer.save_pretrained``). The one used is written as
``tokenizer.json`` into the dataset's version directory, so token ids in the records and
the tokenizer that made them always travel together.

Padding is id 0 everywhere in emojax (``emojax.world.language.mask`` reads ``id != 0``). A
trained tokenizer puts ``[PAD]`` at id 0. A given tokenizer whose id 0 is not a padding
token (GPT-2's id 0 is ``!``) gets every id shifted up by one (:func:`id_offset`), which
the dataset's metadata records as ``token_id_offset``; subtract it before decoding.

Example::

    tok = train(["so happy for you", "that is awful"], vocab_size=100)
    ids, truncated = encode(tok, ["so happy"], max_len=8, offset=0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "[PAD]", "[UNK]"
PAD_NAMES = (PAD, "<pad>", "<|pad|>", "[pad]", "<PAD>")


def train(texts: Sequence[str], vocab_size: int = 8000, min_frequency: int = 2) -> tokenizers.Tokenizer:
    """A lower-casing WordPiece tokenizer (BERT's normaliser and pre-tokeniser) fit on ``texts``."""
    tok = tokenizers.Tokenizer(models.WordPiece(unk_token=UNK))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK], show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer, length=len(texts))
    return tok


def from_file(path: str) -> tokenizers.Tokenizer:
    try:
        return tokenizers.Tokenizer.from_file(path)
    except Exception as err:  # the library raises a bare Exception on a bad file
        raise ValueError(f"{path}: not a tokenizer.json the tokenizers library can read ({err})") from None


def id_offset(tok: tokenizers.Tokenizer) -> int:
    """0 if the tokenizer's id 0 is a padding token, else 1 (ids are shifted to free 0)."""
    return 0 if tok.id_to_token(0) in PAD_NAMES else 1


def vocab_size(tok: tokenizers.Tokenizer, offset: int) -> int:
    """Embedding rows a model needs for ids from this tokenizer (with the shift)."""
    return tok.get_vocab_size(with_added_tokens=True) + offset


def encode(tok: tokenizers.Tokenizer, texts: Sequence[str], max_len: int, offset: int) -> tuple[np.ndarray, int]:
    """``(ids [n, max_len] int32 padded with 0, number of texts truncated to max_len)``."""
    out = np.zeros((len(texts), max_len), np.int32)
    truncated = 0
    for i, enc in enumerate(tok.encode_batch(list(texts))):
        ids = np.asarray(enc.ids, np.int64) + offset
        truncated += len(ids) > max_len
        out[i, : min(len(ids), max_len)] = ids[:max_len]
    return out, int(truncated)
