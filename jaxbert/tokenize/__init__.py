"""Tokenizers: one protocol (base.Tokenizer); WordPiece, byte-level BPE and Unigram tokenizer.json on `tokenizers`,
SentencePiece on `sentencepiece`; loading them from a folder's files, training new vocabularies, a throughput
benchmark."""

from jaxbert.tokenize.base import SpecialTokens, Tokenizer, TokenizerError
from jaxbert.tokenize.bpe import BPETokenizer
from jaxbert.tokenize.corpus import CorpusError, iter_corpus
from jaxbert.tokenize.load import check_vocab_matches, find_tokenizer, load_tokenizer
from jaxbert.tokenize.spiece import SentencePieceTokenizer
from jaxbert.tokenize.train import KINDS, train_vocab
from jaxbert.tokenize.unigram import UnigramTokenizer
from jaxbert.tokenize.wordpiece import WordPieceTokenizer


def __getattr__(name: str):
    # The benchmark module also runs as a script (python -m jaxbert.tokenize.bench): import it on use only.
    if name == "benchmark_encode":
        from jaxbert.tokenize.bench import benchmark_encode

        return benchmark_encode
    raise AttributeError(f"module 'jaxbert.tokenize' has no attribute {name!r}")


__all__ = [
    "KINDS",
    "BPETokenizer",
    "CorpusError",
    "SentencePieceTokenizer",
    "SpecialTokens",
    "Tokenizer",
    "TokenizerError",
    "UnigramTokenizer",
    "WordPieceTokenizer",
    "benchmark_encode",
    "check_vocab_matches",
    "find_tokenizer",
    "iter_corpus",
    "load_tokenizer",
    "train_vocab",
]
