"""Image retrieval: a persistent FAISS index with a metadata table, searched by text, content or both.

>>> from cnnwidgets.index import ImageIndex
>>> index = ImageIndex.build("photos/", path="photos.index")          # doctest: +SKIP
>>> index.search(text="kitten", k=5)                                   # doctest: +SKIP
>>> ImageIndex.load("photos.index").search(image="photos/cat.jpg")    # doctest: +SKIP
"""

from .build import DESCRIPTORS, read_captions
from .evaluation import DISTORTIONS, distortion_set, evaluate
from .image_index import ImageIndex
from .search import MODES, Hit
from .storage import IndexLoadError

__all__ = [
    "ImageIndex",
    "Hit",
    "IndexLoadError",
    "evaluate",
    "distortion_set",
    "DISTORTIONS",
    "read_captions",
    "DESCRIPTORS",
    "MODES",
]
