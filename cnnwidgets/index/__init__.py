"""Image retrieval: a persistent FAISS index with a metadata table, searched by text, content or both.

>>> from cnnwidgets.index import ImageIndex
>>> index = ImageIndex.build("photos/", path="photos.index")          # doctest: +SKIP
>>> index.search(text="kitten", k=5)                                   # doctest: +SKIP
>>> ImageIndex.load("photos.index").search(image="photos/cat.jpg")    # doctest: +SKIP
>>> index.search(text="dog", k=5)        # every breed: WordNet's hierarchy over the tags  # doctest: +SKIP
>>> index.search(image="photos/cat.jpg", mode="cnn", rerank="diffusion")  # doctest: +SKIP
"""

from .build import DESCRIPTORS, read_captions
from .evaluation import DISTORTIONS, class_word_set, distortion_set, evaluate
from .hierarchy import ClassHierarchy, default_hierarchy
from .image_index import ImageIndex
from .rerank import RERANKERS
from .search import MODES, Hit
from .storage import IndexLoadError

__all__ = [
    "ImageIndex",
    "Hit",
    "IndexLoadError",
    "evaluate",
    "distortion_set",
    "class_word_set",
    "DISTORTIONS",
    "ClassHierarchy",
    "default_hierarchy",
    "RERANKERS",
    "read_captions",
    "DESCRIPTORS",
    "MODES",
]
