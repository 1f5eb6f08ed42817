"""Ranking the images of an :class:`~cnnwidgets.index.ImageIndex` for a query: text, one descriptor, semantic, fusion.

The functions here read an index through its public attributes (``rows``, ``faiss``, ``descriptors``, ``model``,
``describe_images``, ``text_scores``) and never change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine import checks
from ..engine.text import tokenize
from ..io import load_image
from . import vectors
from .build import DESCRIPTORS, TOPK_TAGS, metric
from .hierarchy import CompoundNames, compound_parts
from .rerank import RERANKERS
from .rows import ImageRow, RowTable

__all__ = ["Hit", "MODES", "DEFAULT_WEIGHTS", "TEXT_WEIGHTS", "TextVectors", "TextScorer", "search", "similarity"]

MODES = (
    "auto",
    "text",
    "color",
    "moments",
    "color_set",
    "correlogram",
    "hog",
    "gist",
    "glcm",
    "sift",
    "orb",
    "cnn",
    "fusion",
    "semantic",
)
DEFAULT_WEIGHTS = {
    "text": 1.0,
    "cnn": 1.0,
    "color": 0.5,
    "moments": 0.25,
    "color_set": 0.25,
    "correlogram": 0.25,
    "hog": 0.25,
    "gist": 0.25,
    "glcm": 0.25,
    "sift": 0.5,
    "orb": 0.25,
}
TEXT_WEIGHTS = {"keyword": 0.5, "semantic": 0.5, "hierarchy": 0.5}


@dataclass
class Hit:
    """One search result.

    Attributes
    ----------
    path : str
        Absolute path of the image.
    score : float
        The ranking score (higher is better); for fusion the weighted mean of normalised component scores in [0, 1].
    scores : dict
        Raw score per component: inner product for "cnn", "hog" and "gist" (cosine) and "color"/"sift"/"orb"
        (Bhattacharyya coefficient), ``1 / (1 + L2)`` for "moments", "correlogram" and "glcm",
        ``1 / (1 + sqrt(Hamming))`` for "color_set", the text score for "text"; "class_match" (1 or 0) in
        semantic mode. Text mode also shows which part matched: "keyword" (BM25 / its maximum), "semantic"
        (MiniLM cosine) and "hierarchy" (tag probability below the synsets the query's words name). With
        re-ranking, the re-ranker's score under its name ("qe", "diffusion", "kreciprocal").
    tags : list of (str, float)
        The image's predicted top-5 ImageNet labels with probabilities.
    caption : str
    """

    path: str
    score: float
    scores: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    caption: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready dict: path, score, scores, tags (as [label, probability] pairs), caption."""
        return {
            "path": self.path,
            "score": float(self.score),
            "scores": {k: float(v) for k, v in self.scores.items()},
            "tags": [[t, float(p)] for t, p in self.tags],
            "caption": self.caption,
        }


def _hit(row: ImageRow, score, scores) -> Hit:
    return Hit(row.path, float(score), scores, list(row.tags), row.caption)


def similarity(name: str, raw: np.ndarray) -> np.ndarray:
    """Similarity from FAISS's raw value: inner products as they are, squared L2 → 1 / (1 + L2); float32."""
    raw = np.asarray(raw, np.float64)
    if metric(name) == "ip":
        return raw.astype(np.float32)
    return (1.0 / (1.0 + np.sqrt(np.maximum(raw, 0.0)))).astype(np.float32)


class TextVectors:
    """MiniLM embeddings of texts (tag labels, their glosses and captions), each distinct text embedded once.

    Saved with the index, so that the first text query after :meth:`ImageIndex.load` embeds only the query.

    Parameters
    ----------
    texts : sequence of str
        Texts already embedded.
    vectors : numpy.ndarray, optional
        Their embeddings: float32, shape (len(texts), :data:`cnnwidgets.engine.text.TEXT_DIM`), unit rows.
    """

    def __init__(self, texts=(), vectors: np.ndarray | None = None):
        from ..engine.text import TEXT_DIM

        self.texts = [str(t) for t in texts]
        self.vectors = np.zeros((0, TEXT_DIM), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        if len(self.vectors) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.vectors)} vectors")
        self._row = {t: n for n, t in enumerate(self.texts)}

    def __len__(self) -> int:
        return len(self.texts)

    def get(self, texts) -> np.ndarray:
        """Embeddings of ``texts`` (float32, shape (len(texts), 384)); texts not seen before are embedded now."""
        from ..engine.text import embed_text

        texts = [str(t) for t in texts]
        new = list(dict.fromkeys(t for t in texts if t not in self._row))
        if new:
            self._row.update({t: len(self.texts) + n for n, t in enumerate(new)})
            self.texts += new
            self.vectors = np.vstack([self.vectors, embed_text(new)])
        return self.vectors[[self._row[t] for t in texts]] if texts else self.vectors[:0]

    def subset(self, texts) -> TextVectors:
        """The embeddings of ``texts`` only (all of them embedded), in the order given, each once."""
        texts = list(dict.fromkeys(str(t) for t in texts))
        return TextVectors(texts, self.get(texts))


def gloss_texts(labels, hierarchy) -> list[str]:
    """What is embedded for each tag label's gloss: WordNet's definition (:meth:`ClassHierarchy.gloss`), or the
    label itself when it has none (no hierarchy, an unknown label, a hierarchy saved without glosses)."""
    glosses = [hierarchy.gloss(label) if hierarchy is not None else None for label in labels]
    return [g or label for g, label in zip(glosses, labels)]


_MODIFIER = ""
"""The BM25 term of a tag label's modifier word: it counts in the document's length, and no query word is it."""


def _label_terms(label: str) -> list[str]:
    """The BM25 terms of a tag label: its head's words, and :data:`_MODIFIER` for each modifier word."""
    modifiers, head = compound_parts(label)
    return [_MODIFIER] * len(modifiers) + head


class TextScorer:
    """Text score of every row: BM25 over captions, file names and tags, MiniLM similarity, and class words.

    A word of the query meets a tag label only as the label's head ("cart" meets *horse cart*; "horse" and "beach"
    meet neither *horse cart* nor *beach wagon*): the modifiers of a label are no BM25 terms, and a label that the
    query meets only through a modifier gives no MiniLM similarity (:class:`~cnnwidgets.index.hierarchy.CompoundNames`).
    Synonyms and hypernyms come through the ``hierarchy`` part.

    Parameters
    ----------
    rows : RowTable
        The rows to score; the scorer keeps what it needs, so it describes the table as it was when built.
    text_vectors : TextVectors, optional
        Embeddings of labels and captions already computed (the missing ones are added to it).
    hierarchy : cnnwidgets.index.hierarchy.ClassHierarchy, optional
        The class hierarchy of the tags' labels; without it the ``hierarchy`` part is 0.
    """

    def __init__(self, rows: RowTable, *, text_vectors: TextVectors | None = None, hierarchy=None):
        from ..engine.text import BM25

        text_vectors = TextVectors() if text_vectors is None else text_vectors
        labels = sorted({t for r in rows for t, _ in r.tags})
        plurals = hierarchy.plurals if hierarchy is not None else None
        self.compounds = CompoundNames(labels, plurals=plurals)
        label_terms = {label: _label_terms(label) for label in labels}
        stem = os.path.basename  # the file name without its extension, as Path.stem (faster for many rows)
        docs = [
            [
                *tokenize(r.caption or ""),
                *tokenize(os.path.splitext(stem(r.path))[0]),
                *[term for t, _ in r.tags for term in label_terms[t]],
            ]
            for r in rows
        ]
        cap_rows = [n for n, r in enumerate(rows) if r.caption]
        self.tags = [r.tags for r in rows]
        self.bm25 = BM25(docs)
        self.labels = {l: i for i, l in enumerate(labels)}
        width = max((len(tg) for tg in self.tags), default=0)
        # tag_label[row, j]: index in labels of the row's j-th tag, -1 past its last tag
        self.tag_label = np.full((len(self.tags), width), -1, np.int64)
        for r, tg in enumerate(self.tags):
            self.tag_label[r, : len(tg)] = [self.labels[t] for t, _ in tg]
        self.label_vecs = text_vectors.get(labels)
        self.gloss_vecs = text_vectors.get(gloss_texts(labels, hierarchy))
        self.cap_rows = np.array(cap_rows, np.int64)
        self.cap_vecs = text_vectors.get([rows[n].caption for n in cap_rows])
        self.hierarchy = hierarchy
        # every (row, class, probability) of a tag whose label is a class of the hierarchy
        known = hierarchy.class_of if hierarchy is not None else {}
        triples = [(n, known[t], p) for n, tg in enumerate(self.tags) for t, p in tg if t in known]
        self.tag_row = np.array([r for r, _, _ in triples], np.int64)
        self.tag_class = np.array([c for _, c, _ in triples], np.int64)
        self.tag_prob = np.array([p for _, _, p in triples], np.float64)

    def hierarchy_scores(self, text: str) -> tuple[np.ndarray, list]:
        """Per row, how much of its tags' probability lies below the synsets the query's words name.

        For each phrase of ``text`` that names synsets (:meth:`ClassHierarchy.senses`), a row scores the sum of
        ``probability × sense weight`` over its tags whose class is (below) one of them, at most 1; the result is
        the mean over the phrases.

        Returns
        -------
        (numpy.ndarray, list)
            float64, shape (N,), in [0, 1], all 0 when no word names a synset; and the phrases found with their
            senses.
        """
        n = len(self.tags)
        found = self.hierarchy.senses(text) if self.hierarchy is not None else []
        out = np.zeros(n)
        if not found or not len(self.tag_row):
            return out, found
        for _, senses in found:
            weight = self.hierarchy.class_weights(senses)[self.tag_class] * self.tag_prob
            out += np.minimum(np.bincount(self.tag_row, weights=weight, minlength=n), 1.0)
        return out / len(found), found

    def parts(self, text: str) -> dict:
        """The parts of the text score, each float64 of shape (N,) in [0, 1].

        ``keyword``: BM25 divided by its maximum (0 when no word occurs). ``semantic``: the highest MiniLM cosine
        between the query and the caption or a tag (not one the query meets only through a modifier), clipped to
        [0, 1]; a tag's cosine is the mean of the query's cosines with its label and with its WordNet gloss
        (:meth:`ClassHierarchy.gloss`; the label twice when it has none), so that a query that names no class
        ("kitchen", "music") still meets the tags whose definitions are about it. ``hierarchy``:
        :meth:`hierarchy_scores`.
        """
        from ..engine.text import embed_text

        n = len(self.tags)
        kw = self.bm25.scores(text)
        kw = kw / kw.max() if len(kw) and kw.max() > 0 else np.zeros(n, np.float64)
        q = embed_text(text)
        sem = np.full(n, -1.0)
        if self.tag_label.shape[1]:
            lsim = (self.label_vecs @ q + self.gloss_vecs @ q) / 2
            lsim = np.where(self.compounds.modified(text), -1.0, lsim)
            lsim = np.append(lsim, -1.0)  # the last entry for "no tag" (-1)
            sem = lsim[self.tag_label].max(axis=1).astype(np.float64)
        if len(self.cap_rows):
            sem[self.cap_rows] = np.maximum(sem[self.cap_rows], self.cap_vecs @ q)
        return {"keyword": kw, "semantic": np.clip(sem, 0.0, 1.0), "hierarchy": self.hierarchy_scores(text)[0]}

    @staticmethod
    def combine(parts: dict, *, weights: dict | None = None) -> np.ndarray:
        """``sum of w_part * part`` with :data:`TEXT_WEIGHTS` updated by ``weights``; float32 (N,)."""
        w = dict(TEXT_WEIGHTS, **{k: v for k, v in (weights or {}).items() if k in TEXT_WEIGHTS})
        return sum(float(w[name]) * parts[name] for name in TEXT_WEIGHTS).astype(np.float32)

    def scores(self, text: str, *, weights: dict | None = None) -> np.ndarray:
        """The text score per row (see :meth:`ImageIndex.text_scores`): :meth:`combine` of :meth:`parts`."""
        return self.combine(self.parts(text), weights=weights)


def _indexed_row(index, image) -> ImageRow | None:
    if not isinstance(image, (str, os.PathLike)):
        return None
    return index.rows.get(str(Path(image).expanduser().resolve()))


def query_vectors(index, image, names) -> dict:
    """Query vector per descriptor (float32, D); an indexed path reuses its stored vectors."""
    row = _indexed_row(index, image)
    if row is not None:
        return {n: index.faiss[n].reconstruct(row.id) for n in names}
    vecs, _ = index.describe_images([load_image(image, mode="rgb")], descriptors=names, with_tags=False)
    return {n: v[0] for n, v in vecs.items()}


def query_tags(index, image) -> list:
    """The query's top-5 labels as (label, probability); an indexed path reuses its stored tags."""
    row = _indexed_row(index, image)
    if row is not None:
        return list(row.tags)
    from ..engine.models import classify

    return [(str(t), float(p)) for t, p in classify(index.model, load_image(image, mode="rgb"), topk=TOPK_TAGS)]


def _content(index, name, q, k, allowed=None) -> tuple[np.ndarray, np.ndarray]:
    d, i = vectors.search(index.faiss[name], q, k, allowed=allowed)
    d, i = d[0], i[0]
    keep = i >= 0
    return similarity(name, d[keep]), i[keep]


def _exact(index, name, q, ids) -> np.ndarray:
    if len(ids) == 0:
        return np.zeros(0, np.float32)
    x = np.vstack([index.faiss[name].reconstruct(int(i)) for i in ids])
    raw = x @ q if metric(name) == "ip" else ((x - q) ** 2).sum(axis=1)
    return similarity(name, raw)


def _need(index, name, mode):
    if name not in index.faiss:
        raise ValueError(
            f"mode={mode!r}: this index has no {name!r} descriptor (it has {index.descriptors}); "
            f"build it with descriptors=(..., {name!r})"
        )


def _check_weights(weights) -> None:
    if weights is None:
        return
    if not isinstance(weights, dict):
        raise ValueError(f"weights must be a dict {{component: weight}}, got {checks.short(weights)}")
    for name, w in weights.items():
        checks.number(f"weights[{name!r}]", w, lo=0)


def search(index, text, image, mode: str, k: int, weights, rerank) -> list[Hit]:
    """Find images of ``index`` by text, by an example image, or both: :meth:`ImageIndex.search`, whose keyword
    arguments these are, with its defaults."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode={checks.short(mode)}: expected one of {MODES}")
    if rerank is not None and (not isinstance(rerank, str) or rerank not in RERANKERS):
        raise ValueError(f"rerank={checks.short(rerank)}: expected None or one of {RERANKERS}")
    if not checks.is_integer(k) or k < 1:
        raise ValueError(f"k={checks.short(k)}: expected a positive number of results")
    k = int(k)
    _check_weights(weights)
    has_text = text is not None and str(text).strip() != ""
    has_image = image is not None
    if not has_text and not has_image:
        raise ValueError("search needs text=..., image=... or both")
    if mode == "auto":
        mode = (
            "fusion"
            if has_text and has_image
            else "text"
            if has_text
            else "semantic"
            if "cnn" in index.faiss
            else index.descriptors[0]
        )
    if len(index.rows) == 0:
        return []
    if mode == "text":
        if not has_text:
            raise ValueError("mode='text' needs text=...")
        parts = index.text_scorer.parts(str(text))
        s = TextScorer.combine(parts, weights=weights)
        order = np.argsort(-s, kind="stable")[:k]
        return [
            _hit(index.rows[r], float(s[r]), {"text": float(s[r]), **{n: float(p[r]) for n, p in parts.items()}})
            for r in order
        ]
    if mode in DESCRIPTORS or mode == "semantic":
        _need(index, "cnn" if mode == "semantic" else mode, mode)
        if not has_image:
            raise ValueError(f"mode={mode!r} needs image=...")
    names = ["cnn"] if mode == "semantic" else [mode] if mode in DESCRIPTORS else list(index.descriptors)
    qv = query_vectors(index, image, names) if has_image else {}
    query = _Query(text if has_text else None, qv, query_tags(index, image) if mode == "semantic" else None)
    if rerank is None or not has_image:
        return _rank(index, mode, query, k, weights)
    own = _indexed_row(index, image)
    return _reranked(index, mode, query, k, weights, rerank, None if own is None else own.id)


@dataclass
class _Query:
    text: str | None
    vectors: dict
    tags: list | None


def _rank(index, mode, query: _Query, k, weights) -> list[Hit]:
    if mode in DESCRIPTORS:
        sc, ids = _content(index, mode, query.vectors[mode], k)
        return [_hit(index.rows.by_id(i), float(s), {mode: float(s)}) for s, i in zip(sc, ids)]
    if mode == "semantic":
        return _semantic(index, query, k)
    return _fusion(index, query.text, query.vectors, k, weights)


def _rerank_descriptor(index, mode) -> str:
    """The descriptor whose vectors diffusion and k-reciprocal compare: the mode's, else "cnn", else the first."""
    return mode if mode in DESCRIPTORS else "cnn" if "cnn" in index.faiss else index.descriptors[0]


def _reranked(index, mode, query: _Query, k, weights, rerank, own_id) -> list[Hit]:
    """The hits of ``mode`` re-ranked by ``rerank`` (see :mod:`cnnwidgets.index.rerank`)."""
    from . import rerank as reranking

    if rerank == "qe":
        first = _rank(index, mode, query, reranking.QE_NEIGHBOURS + 1, weights)
        ids = [index.rows.get(h.path).id for h in first]
        ids = [i for i in ids if i != own_id][: reranking.QE_NEIGHBOURS]
        expanded = {}
        for name, q in query.vectors.items():
            x = np.vstack([index.faiss[name].reconstruct(int(i)) for i in ids]) if ids else np.zeros((0, len(q)))
            expanded[name] = reranking.expand_query(q, x, metric=metric(name))
        hits = _rank(index, mode, _Query(query.text, expanded, query.tags), k, weights)
        for h in hits:
            h.scores["qe"] = h.score
        return hits
    depth = max(reranking.RERANK_DEPTH, k)
    first = _rank(index, mode, query, depth, weights)
    if len(first) < 2:
        return first[:k]
    name = _rerank_descriptor(index, mode)
    q = query.vectors[name]
    ids = [index.rows.get(h.path).id for h in first]
    x = np.vstack([index.faiss[name].reconstruct(int(i)) for i in ids])
    if rerank == "diffusion":
        new = reranking.diffusion_scores(q, x, metric=metric(name))
    else:
        new = -reranking.kreciprocal_distances(q, x, metric=metric(name))
    group = np.array([h.scores.get("class_match", 0.0) for h in first])
    order = np.lexsort((np.arange(len(first)), -new, -group))  # semantic mode keeps its class matches first
    out = []
    for j in order[:k]:
        h = first[int(j)]
        h.scores[rerank] = float(new[j])
        h.score = float(new[j])
        out.append(h)
    return out


def _semantic(index, query: _Query, k) -> list[Hit]:
    """Images sharing a top-5 label with the query, by CNN similarity; filled up by plain CNN search."""
    q = query.vectors["cnn"]
    qtags = {t for t, _ in query.tags}
    allowed = np.array([r.id for r in index.rows if qtags & {t for t, _ in r.tags}], np.int64)
    hits = []
    if len(allowed):
        sc, ids = _content(index, "cnn", q, k, allowed=allowed)
        hits = [_hit(index.rows.by_id(i), float(s), {"cnn": float(s), "class_match": 1.0}) for s, i in zip(sc, ids)]
    if len(hits) < k:  # too few images share a class: fill with plain CNN search
        seen = {h.path for h in hits}
        sc, ids = _content(index, "cnn", q, k + len(hits))
        for s, i in zip(sc, ids):
            row = index.rows.by_id(i)
            if row.path not in seen and len(hits) < k:
                hits.append(_hit(row, float(s), {"cnn": float(s), "class_match": 0.0}))
    return hits


def _fusion(index, text, qv, k, weights) -> list[Hit]:
    """Min–max normalised component scores over the union of each component's candidates, weighted and averaged."""
    w = dict(DEFAULT_WEIGHTS, **{n: v for n, v in (weights or {}).items() if n in DEFAULT_WEIGHTS})
    comps, cand = {}, set()
    pool = max(5 * k, 50)
    tscores = None
    if text is not None:
        tscores = index.text_scores(str(text), weights={n: v for n, v in (weights or {}).items() if n in TEXT_WEIGHTS})
        cand.update(int(index.rows.ids[r]) for r in np.argsort(-tscores, kind="stable")[:pool])
    for name in qv:
        _, ids = _content(index, name, qv[name], pool)
        cand.update(int(i) for i in ids)
    cand = np.array(sorted(cand), np.int64)
    positions = index.rows.positions_of(cand)
    if tscores is not None:
        comps["text"] = tscores[positions]
    for name in qv:
        comps[name] = _exact(index, name, qv[name], cand)
    total = np.zeros(len(cand))
    wsum = 0.0
    for name, s in comps.items():
        wt = float(w.get(name, 0.0))
        if wt <= 0:
            continue
        lo, hi = float(np.min(s)), float(np.max(s))
        total += wt * ((s - lo) / (hi - lo) if hi > lo else np.ones_like(s, dtype=np.float64))
        wsum += wt
    total /= max(wsum, 1e-12)
    order = np.argsort(-total, kind="stable")[:k]
    return [
        _hit(index.rows[int(positions[j])], float(total[j]), {n: float(s[j]) for n, s in comps.items()}) for j in order
    ]
