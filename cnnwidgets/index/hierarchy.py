"""The ImageNet-1k classes in WordNet 3.0: which class words name which classes, and how strongly.

The data file ``cnnwidgets/data/imagenet_hierarchy.json.gz`` (written by ``tools/make_imagenet_hierarchy.py``
from WordNet 3.0; licence in ``cnnwidgets/data/WORDNET_LICENSE``) holds, for each class in the models' class
order, its WordNet ID, its label, its lemmas, its gloss (WordNet's definition) and all its hypernyms up to the
root. :class:`ClassHierarchy` reads it and answers: which synsets does a word or phrase name
(:meth:`ClassHierarchy.senses`), which classes lie below them (:meth:`ClassHierarchy.class_weights`), the hypernym
path of a label (:meth:`ClassHierarchy.path`) and what a class is, in words (:meth:`ClassHierarchy.gloss`).

"dog" names one synset (``n02084071``, the domestic dog), below which lie the 118 dog breeds of ImageNet-1k;
"horse" names ``n02374451``, above "sorrel". A word with several noun senses in the hierarchy ("crane": the bird
and the machine) names each, weighted by how often WordNet's SemCor tags that sense relative to the word's most
frequent sense: ``(count + 1) / (max count + 1)``.

Inside a multi-word class name a word names the class only as the name's head (:func:`compound_parts`,
:class:`CompoundNames`): a *horse cart* is a cart, not a horse; a *beach wagon* is a car, which "car" finds through
WordNet and "beach" does not find at all.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources

import numpy as np

from ..engine.text import tokenize

__all__ = ["ClassHierarchy", "CompoundNames", "compound_parts", "word_forms", "default_hierarchy", "DATA_FILE"]

DATA_FILE = "imagenet_hierarchy.json.gz"
MAX_PHRASE = 5
"""Longest lemma, in words, looked for in a query."""

_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y"))


def word_forms(word: str, plurals: dict | None = None) -> list[str]:
    """``word`` and the lemmas it may be the plural of (an irregular plural's lemma, then each regular suffix
    taken off: candidates, not all of them words).

    Parameters
    ----------
    word : str
        One word as :func:`cnnwidgets.engine.text.tokenize` writes it.
    plurals : dict, optional
        Irregular plural → lemma (:attr:`ClassHierarchy.plurals`).

    Examples
    --------
    >>> word_forms("carts")
    ['carts', 'cart']
    >>> word_forms("horses")
    ['horses', 'hors', 'horse']
    >>> word_forms("geese", {"geese": "goose"})
    ['geese', 'goose']
    """
    forms = [word, (plurals or {}).get(word)] + [word[: -len(s)] + r for s, r in _SUFFIXES if word.endswith(s)]
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return list(dict.fromkeys(f for f in forms if f))


def compound_parts(name: str) -> tuple[list[str], list[str]]:
    """The words of a class name split into its modifiers and its head, the last word: a "horse cart" is a cart.

    Words joined by hyphens are one word ("four-poster" is all head).

    Examples
    --------
    >>> compound_parts("horse cart")
    (['horse'], ['cart'])
    >>> compound_parts("German short-haired pointer")
    (['german', 'short', 'haired'], ['pointer'])
    >>> compound_parts("four-poster")
    ([], ['four', 'poster'])

    Returns
    -------
    (list of str, list of str)
        The tokens (:func:`cnnwidgets.engine.text.tokenize`) of the modifiers and of the head.
    """
    *modifiers, head = str(name).split() or [""]
    return [t for word in modifiers for t in tokenize(word)], tokenize(head)


class CompoundNames:
    """Names of classes as compounds: which names the words of a query meet only as a modifier.

    A query word names a class through the class's WordNet synonyms and hypernyms (:class:`ClassHierarchy`) and,
    inside a multi-word name, only as its head: "cart" names a *horse cart*, "horse" does not; "beach" does not
    name a *beach wagon* (a car, which "car" finds through WordNet).

    Parameters
    ----------
    names : sequence of str
        Class names (tag labels).
    plurals : dict, optional
        Irregular plural → lemma, so that "geese" meets the modifier "goose".
    """

    def __init__(self, names, *, plurals: dict | None = None):
        self.names = [str(n) for n in names]
        self.plurals = dict(plurals or {})
        self._modifying: dict[str, set] = {}  # word form → indices of the names it modifies
        self._heading: dict[str, set] = {}  # word form → indices of the names whose head holds it
        for n, name in enumerate(self.names):
            modifiers, head = compound_parts(name)
            for words, table in ((modifiers, self._modifying), (head, self._heading)):
                for form in {f for w in words for f in word_forms(w, self.plurals)}:
                    table.setdefault(form, set()).add(n)

    def __len__(self) -> int:
        return len(self.names)

    def modified(self, text: str) -> np.ndarray:
        """Which names a word of ``text`` meets as a modifier while no word of ``text`` is in their head.

        Returns
        -------
        numpy.ndarray
            bool, shape (len(names),): True for the names that ``text`` must not match through their words
            ("beach" → *beach wagon*); "beach wagon" itself, or "wagon", leaves *beach wagon* False.
        """
        forms = {f for w in tokenize(text) for f in word_forms(w, self.plurals)}
        modifying = set().union(*(self._modifying.get(f, ()) for f in forms))
        heading = set().union(*(self._heading.get(f, ()) for f in forms))
        out = np.zeros(len(self.names), bool)
        out[sorted(modifying - heading)] = True
        return out


class ClassHierarchy:
    """Classes, their WordNet synsets and hypernyms, and the noun senses of every lemma on the way.

    Parameters
    ----------
    data : dict
        The decoded data file: ``classes`` (per class ``index``, ``wnid``, ``label``, ``lemmas``, ``hypernyms``:
        every hypernym's WordNet ID, nearest first), ``synsets`` (per WordNet ID ``lemmas`` and direct
        ``hypernyms``), ``senses`` (per lemma, written as :func:`cnnwidgets.engine.text.tokenize` splits it and
        joined by spaces, a list of ``[wnid, SemCor count]``), ``plurals`` (irregular plural → lemma, likewise).

    Attributes
    ----------
    labels : tuple of str
        Class labels in class order (the models' ImageNet category names).
    wnids : tuple of str
        WordNet ID per class.
    plurals : dict
        WordNet's irregular plurals: plural → lemma.
    """

    def __init__(self, data: dict):
        self.data = data
        classes = data["classes"]
        self.labels = tuple(c["label"] for c in classes)
        self.wnids = tuple(c["wnid"] for c in classes)
        self.class_of = {label: n for n, label in enumerate(self.labels)}
        self.synsets = data["synsets"]
        self._senses = data["senses"]
        self.plurals = data.get("plurals", {})
        self._longest = max((k.count(" ") + 1 for k in self._senses), default=1)
        self._below_cache: dict | None = None

    def _below(self, wnid: str) -> np.ndarray | None:
        """Indices of the classes that are ``wnid`` or lie below it."""
        if self._below_cache is None:
            below: dict[str, list] = {}
            for n, c in enumerate(self.data["classes"]):
                below.setdefault(c["wnid"], []).append(n)
                for s in c["hypernyms"]:
                    below.setdefault(s, []).append(n)
            self._below_cache = below
        found = self._below_cache.get(wnid)
        return None if found is None else np.array(found, np.int64)

    @classmethod
    def from_file(cls, path) -> ClassHierarchy:
        """Read a hierarchy written as gzip-compressed JSON (the package's data file or an index's copy)."""
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return cls(json.load(f))

    def to_bytes(self) -> bytes:
        """The hierarchy as gzip-compressed JSON (what :meth:`from_file` reads); the same data, the same bytes."""
        text = json.dumps(self.data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return gzip.compress(text.encode("utf-8"), mtime=0)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"ClassHierarchy({len(self)} classes, {len(self.synsets)} synsets)"

    # ------------------------------------------------------------------ classes
    def lemmas(self, wnid: str) -> list[str]:
        """The lemmas of synset ``wnid`` (spaces between words)."""
        return list(self.synsets[wnid]["lemmas"])

    def gloss(self, label: str) -> str | None:
        """WordNet's definition of class ``label``; ``None`` for unknown labels and hierarchies written without glosses.

        Examples
        --------
        >>> default_hierarchy().gloss("beaker")
        'a flatbottomed jar made of glass or plastic; used for chemistry'
        """
        n = self.class_of.get(label)
        return None if n is None else self.data["classes"][n].get("gloss")

    def without_glosses(self) -> ClassHierarchy:
        """The same hierarchy without glosses: what an index saved before them holds, and how text search scored
        then (a tag's semantic part is its label's cosine alone)."""
        classes = [{k: v for k, v in c.items() if k != "gloss"} for c in self.data["classes"]]
        return ClassHierarchy({**self.data, "classes": classes})

    def hypernyms(self, label: str) -> list[str]:
        """WordNet IDs of every hypernym of class ``label`` up to the root, nearest first; ``[]`` for unknown labels."""
        n = self.class_of.get(label)
        return [] if n is None else list(self.data["classes"][n]["hypernyms"])

    def hypernym_lemmas(self, label: str) -> list[str]:
        """Every lemma of every hypernym of class ``label``, nearest first, each once."""
        return list(dict.fromkeys(lemma for s in self.hypernyms(label) for lemma in self.lemmas(s)))

    def path(self, label: str) -> list[str]:
        """The first lemma of each synset from class ``label`` up to the root along first hypernyms.

        Examples
        --------
        >>> default_hierarchy().path("tabby")[:4]
        ['tabby', 'domestic cat', 'cat', 'feline']
        """
        n = self.class_of.get(label)
        if n is None:
            return []
        s, out = self.wnids[n], []
        while True:
            out.append(self.synsets[s]["lemmas"][0])
            up = self.synsets[s]["hypernyms"]
            if not up:
                return out
            s = up[0]

    def path_to(self, label: str, text: str) -> list[str]:
        """The shortest hypernym path from class ``label`` up to a synset that a phrase of ``text`` names.

        >>> default_hierarchy().path_to("palace", "building")
        ['palace', 'residence', 'house', 'building']

        Returns
        -------
        list of str
            The first lemma of each synset on the way, the class first; ``[]`` when no such synset is above it.
        """
        n = self.class_of.get(label)
        targets = {s for _, senses in self.senses(text) for s, _ in senses}
        if n is None or not targets:
            return []
        start = self.wnids[n]
        previous, frontier = {start: None}, [start]
        while frontier:
            found = [s for s in frontier if s in targets]
            if found:
                s, out = found[0], []
                while s is not None:
                    out.append(self.synsets[s]["lemmas"][0])
                    s = previous[s]
                return out[::-1]
            nxt = []
            for s in frontier:
                for h in self.synsets[s]["hypernyms"]:
                    if h not in previous:
                        previous[h] = s
                        nxt.append(h)
            frontier = nxt
        return []

    # ------------------------------------------------------------------ words
    def _lookup(self, words: list[str]) -> list | None:
        *head, last = words
        for form in word_forms(last, self.plurals):
            senses = self._senses.get(" ".join([*head, form]))
            if senses:
                top = max(count for _, count in senses)
                return [(s, (count + 1.0) / (top + 1.0)) for s, count in senses]
        return None

    def senses(self, text: str) -> list[tuple[str, list]]:
        """The phrases of ``text`` that are lemmas of the hierarchy, longest first, left to right, and their senses.

        Plurals are reduced to their lemma (WordNet's irregular plurals, then the regular suffixes).

        Returns
        -------
        list of (str, list of (str, float))
            Per phrase found, the phrase and its senses: WordNet ID and weight in (0, 1], 1 for the word's most
            frequent sense. ``[]`` when no phrase of ``text`` names a synset of the hierarchy.
        """
        words = tokenize(text)
        out, start = [], 0
        while start < len(words):
            for width in range(min(self._longest, MAX_PHRASE, len(words) - start), 0, -1):
                found = self._lookup(words[start : start + width])
                if found is not None:
                    out.append((" ".join(words[start : start + width]), found))
                    start += width
                    break
            else:
                start += 1
        return out

    def class_weights(self, senses) -> np.ndarray:
        """Per class, the largest weight of a sense it lies below (or is): float64, shape (n_classes,), in [0, 1]."""
        w = np.zeros(len(self.labels))
        for wnid, weight in senses:
            below = self._below(wnid)
            if below is not None:
                w[below] = np.maximum(w[below], weight)
        return w


@functools.lru_cache(maxsize=1)
def default_hierarchy() -> ClassHierarchy:
    """The ImageNet-1k hierarchy shipped with cnnwidgets (read once per process)."""
    with resources.files("cnnwidgets").joinpath("data", DATA_FILE).open("rb") as f:
        return ClassHierarchy(json.loads(gzip.decompress(f.read()).decode("utf-8")))
