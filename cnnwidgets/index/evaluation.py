"""Retrieval quality: precision@k and mean average precision per search mode, and a labelled distortion set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "evaluate",
    "average_precision",
    "distortion_set",
    "class_word_set",
    "everyday_word_set",
    "DISTORTIONS",
    "DISTORTION_SAMPLES",
    "CLASS_WORD_SOURCES",
    "EVERYDAY_SOURCES",
    "EVERYDAY_WORDS",
    "CONCEPT_WORDS",
    "CONCEPT_CLASSES",
]

DISTORTIONS = ("original", "rot90", "rot25", "crop", "scale", "stretch", "noise", "hue")
"""Copies made by :func:`distortion_set`: the original, rotations by 90° and 25°, a 65 % centre crop, a half-size
copy, a 1.6× horizontal stretch, Gaussian noise (σ = 25 grey levels) and a 90° hue rotation."""

DISTORTION_SAMPLES = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "camera",
    "coins",
)


def average_precision(relevant: np.ndarray) -> float:
    """Average precision of a ranking given as a boolean array (True = relevant), over all relevant items in it."""
    rel = np.asarray(relevant, bool)
    if not rel.any():
        return 0.0
    hits = np.cumsum(rel)
    return float(np.mean(hits[rel] / (np.flatnonzero(rel) + 1)))


def evaluate(
    index, labels=None, *, modes=None, k: int = 10, details: bool = False, rerank=None, weights: dict | None = None
) -> dict:
    """Leave-one-out retrieval quality of ``index`` for each mode.

    Every indexed image is used as the query (by its stored descriptors); it is removed from its own ranking,
    and the other images with its label are the relevant ones. In "text" mode each distinct label is the query
    text instead.

    Parameters
    ----------
    index : ImageIndex
    labels : dict or callable, optional
        ``{path: label}``, or ``f(path) -> label``. Default: the name of the image's parent folder.
    modes : sequence of str, optional
        Default: every content descriptor of the index, plus "fusion", plus "semantic" when it has "cnn".
    k : int
        Cut-off for precision@k.
    details : bool
        Also return ``"per_query"``: ``{path: average precision}`` per mode.
    rerank : str or sequence of str, optional
        Re-rankers (:data:`cnnwidgets.index.rerank.RERANKERS`) to report besides the plain ranking: each image
        mode ``m`` then also has an entry ``"m+<reranker>"``.
    weights : dict, optional
        Passed to :meth:`ImageIndex.search` (fusion and text weights, e.g. ``{"hierarchy": 0}``).

    Returns
    -------
    dict
        ``{mode: {"precision@k": float, "mAP": float, "queries": int}}`` (``k`` replaced by its value), and
        ``{"mode+reranker": ...}`` for each re-ranker asked for.
    """
    paths = list(index.paths)
    n = len(paths)
    if n < 2:
        raise ValueError("evaluate needs an index with at least two images")
    if labels is None:
        lab = [Path(p).parent.name for p in paths]
    elif callable(labels):
        lab = [labels(p) for p in paths]
    else:
        norm = {str(Path(p).expanduser().resolve()): v for p, v in labels.items()}
        missing = [p for p in paths if p not in norm]
        if missing:
            raise ValueError(f"labels has no entry for {len(missing)} indexed images, e.g. {missing[0]}")
        lab = [norm[p] for p in paths]
    lab = np.array(lab, dtype=object)
    label_of = dict(zip(paths, lab))
    if modes is None:
        modes = list(index.descriptors) + ["fusion"] + (["semantic"] if "cnn" in index.descriptors else [])
    rerankers = [] if rerank is None else [rerank] if isinstance(rerank, str) else list(rerank)
    runs = [(m, None) for m in modes] + [(m, r) for m in modes if m != "text" for r in rerankers]
    out = {}
    for mode, reranker in runs:
        precisions, aps, per = [], [], {}
        if mode == "text":
            for label in sorted(set(lab)):
                hits = index.search(text=str(label), mode="text", k=n, weights=weights)
                rel = np.array([label_of[h.path] == label for h in hits])
                precisions.append(rel[:k].mean())
                aps.append(average_precision(rel))
                per[str(label)] = aps[-1]
        else:
            for r, p in enumerate(paths):
                if (lab == lab[r]).sum() < 2:
                    continue
                found = index.search(image=p, mode=mode, k=n, rerank=reranker, weights=weights)
                hits = [h for h in found if h.path != p]
                rel = np.array([label_of[h.path] == lab[r] for h in hits])
                precisions.append(rel[:k].mean())
                aps.append(average_precision(rel))
                per[p] = aps[-1]
        key = mode if reranker is None else f"{mode}+{reranker}"
        out[key] = {
            f"precision@{k}": float(np.mean(precisions)) if precisions else 0.0,
            "mAP": float(np.mean(aps)) if aps else 0.0,
            "queries": len(aps),
        }
        if details:
            out[key]["per_query"] = per
    return out


def _distort(img: np.ndarray, kind: str, rng) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    if kind == "original":
        return img
    if kind == "rot90":
        return np.ascontiguousarray(np.rot90(img))
    if kind == "rot25":
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if kind == "crop":
        ch, cw = int(h * 0.65), int(w * 0.65)
        y, x = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(img[y : y + ch, x : x + cw])
    if kind == "scale":
        return cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    if kind == "stretch":
        return cv2.resize(img, (int(w * 1.6), h), interpolation=cv2.INTER_LINEAR)
    if kind == "noise":
        return np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    if kind == "hue":
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 45) % 180  # OpenCV hue is in [0, 180): 45 = 90 degrees
        hsv[..., 1] = np.maximum(hsv[..., 1], 90)  # also tint grey images, so every copy changes colour
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    raise ValueError(f"unknown distortion {kind!r}; expected one of {DISTORTIONS}")


def distortion_set(
    folder, *, samples=DISTORTION_SAMPLES, distortions=DISTORTIONS, size: int = 256, seed: int = 0
) -> dict:
    """Write each sample image and distorted copies of it to ``folder/<sample>/<sample>_<distortion>.png``.

    Every original has known copies, so retrieval can be scored: the label of each file is its sample name.

    Parameters
    ----------
    folder : str or pathlib.Path
    samples : sequence of str
        Names from :func:`cnnwidgets.datasets.list_samples`; grey samples are stored as RGB.
    distortions : sequence of str
        From :data:`DISTORTIONS`.
    size : int
        Originals are first reduced to at most this many pixels on a side.
    seed : int
        Seed of the noise.

    Returns
    -------
    dict
        ``{absolute path: sample name}`` for every file written.
    """
    from ..datasets import sample
    from ..io import load_image, to_uint8

    rng = np.random.default_rng(seed)
    originals = ((name, _reduced(load_image(to_uint8(sample(name)), mode="rgb"), size)) for name in samples)
    copies = ((name, f"{name}_{kind}.png", _distort(img, kind, rng)) for name, img in originals for kind in distortions)
    return _write_labelled(folder, copies)


def _reduced(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` reduced to at most ``size`` pixels on a side (itself when it is smaller)."""
    from ..io import resize_to_fit

    return resize_to_fit(img, size) if max(img.shape[:2]) > size else img


def _write_labelled(folder, files) -> dict:
    """Write ``(label, file name, RGB uint8 H×W×3 image)`` triples to ``folder/<label>/<file name>`` as PNG.

    Returns
    -------
    dict
        ``{absolute path: label}`` for every file written.
    """
    from PIL import Image

    folder = Path(folder).expanduser()
    out = {}
    for label, name, img in files:
        (folder / label).mkdir(parents=True, exist_ok=True)
        path = (folder / label / name).resolve()
        Image.fromarray(img).save(path)
        out[str(path)] = label
    return out


CLASS_WORD_SOURCES = {
    "cat": (("skimage", "chelsea.png"),),
    "coffee": (("skimage", "coffee.png"),),
    "vehicle": (("skimage", "rocket.jpg"), ("skimage", "motorcycle_left.png"), ("skimage", "motorcycle_right.png")),
    "building": (("sklearn", "china.jpg"),),
    "flower": (("sklearn", "flower.jpg"),),
    "person": (("skimage", "astronaut.png"), ("matplotlib", "grace_hopper.jpg"), ("skimage", "camera.png")),
}
"""Photos that ship with scikit-image, scikit-learn and Matplotlib, by the class word that names what they show.
Every word names a WordNet synset above ImageNet classes; "person" is the hard case: ImageNet-1k has only three
person classes (scuba diver, groom, ballplayer), and none of them is what these photos show."""


_DATA_FOLDERS = {
    "skimage": "data",
    "sklearn": "datasets/images",
    "matplotlib": "mpl-data/sample_data",
    "foolbox": "data",
}
_DEBIAN_FOLDERS = {"opencv-doc": "/usr/share/doc/opencv-doc/examples/data"}
_PIP_INSTALL = {"foolbox": "--no-deps foolbox==3.3.4"}  # only its data files are read


def _source_file(package: str, name: str) -> Path:
    """The bundled photo ``name`` of a Python or Debian ``package``, found without importing the package."""
    from importlib.util import find_spec

    if package in _DEBIAN_FOLDERS:
        path = Path(_DEBIAN_FOLDERS[package]) / name
        if not path.is_file():
            raise FileNotFoundError(f"the photo {name} ships with Debian's {package}: apt-get install {package}")
        return path
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        install = _PIP_INSTALL.get(package, package)
        raise FileNotFoundError(f"the photo {name} ships with {package}, which is not installed: pip install {install}")
    return Path(list(spec.submodule_search_locations)[0]) / _DATA_FOLDERS[package] / name


def _augment(img: np.ndarray, rng) -> np.ndarray:
    """A random crop (55–100 % of each side), mirror, rotation (±15°), scale and brightness/saturation change."""
    import cv2

    h, w = img.shape[:2]
    ch, cw = int(h * rng.uniform(0.55, 1.0)), int(w * rng.uniform(0.55, 1.0))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = np.ascontiguousarray(img[y : y + ch, x : x + cw])
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), rng.uniform(-15, 15), 1.0)
    out = cv2.warpAffine(out, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    scale = rng.uniform(0.5, 1.0)
    out = cv2.resize(out, (max(16, int(cw * scale)), max(16, int(ch * scale))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float64)
    hsv[..., 1] *= rng.uniform(0.7, 1.3)
    hsv[..., 2] *= rng.uniform(0.7, 1.3)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def class_word_set(folder, *, per_class: int = 16, size: int = 256, seed: int = 0, sources=None) -> dict:
    """Write ``per_class`` images per class word from bundled photos: ``folder/<word>/img_<n>.png``.

    Each class holds its photos (:data:`CLASS_WORD_SOURCES`) and random augmentations of them (crop, mirror,
    rotation, scale, brightness and saturation), ``per_class`` in all, shared out evenly between its photos.
    File names carry no class word, so text search finds the images by their predicted tags only. A small set:
    10 photos behind 96 images (with the defaults), so figures measured on it show tendencies, not benchmarks.

    Parameters
    ----------
    folder : str or pathlib.Path
    per_class : int
        Images per class (the photos themselves among them).
    size : int
        Photos are first reduced to at most this many pixels on a side.
    seed : int
    sources : dict, optional
        ``{word: ((package, file name), ...)}``; default :data:`CLASS_WORD_SOURCES`.

    Returns
    -------
    dict
        ``{absolute path: class word}`` for every file written.
    """
    from ..io import load_image

    rng = np.random.default_rng(seed)

    def files():
        for word, sources_of_word in (sources or CLASS_WORD_SOURCES).items():
            photos = [_reduced(load_image(_source_file(*src), mode="rgb"), size) for src in sources_of_word]
            for n in range(per_class):
                photo = photos[n % len(photos)]
                yield word, f"img_{n:03d}.png", photo if n < len(photos) else _augment(photo, rng)

    return _write_labelled(folder, files())


EVERYDAY_SOURCES = {
    label: (("foolbox", f"imagenet_{n:02d}_{cls}.jpg"),)
    for n, (label, cls) in enumerate(
        [
            ("bull mastiff", 243), ("folding chair", 559), ("beaker", 438), ("buckeye", 990), ("strawberry", 949),
            ("thatch", 853), ("jeep", 609), ("jeep 2", 609), ("yurt", 915), ("bottlecap", 455), ("drum", 541),
            ("Loafer", 630), ("prayer rug", 741), ("cannon", 471), ("spoonbill", 129), ("goose", 99),
            ("dalmatian", 251), ("bald eagle", 22), ("leafhopper", 317), ("dung beetle", 305),
        ]
    )
} | {
    label: (("opencv-doc", name),)
    for label, name in [
        ("soccer player", "messi5.jpg"), ("basketball players", "basketball1.png"), ("palace", "home.jpg"),
        ("hotel", "building.jpg"), ("old street", "leuvenA.jpg"), ("city from the air", "aero1.jpg"),
        ("cut fruits", "fruits.jpg"), ("orange", "orange.jpg"), ("apple", "apple.jpg"), ("small dog", "chicky_512.png"),
        ("baboon", "baboon.jpg"), ("butterfly", "butterfly.jpg"), ("car in traffic", "licenseplate_motion.jpg"),
        ("squirrel", "squirrel_cls.jpg"), ("potted aloe", "aloeL.jpg"), ("starry night", "starry_night.jpg"),
    ]
}  # fmt: skip
"""The held-out photos, by what they show: the 20 ImageNet validation photos that ship with foolbox 3.3.4
(``foolbox/data``, named by their ImageNet label; two show jeeps) and 16 photos of OpenCV's samples that ship
with Debian's ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data``). The models never trained on the
first, and no rule of the text search was made on any of them."""

EVERYDAY_WORDS = {
    "dog": ("bull mastiff", "dalmatian", "small dog"),
    "bird": ("spoonbill", "goose", "bald eagle"),
    "insect": ("leafhopper", "dung beetle", "butterfly"),
    "car": ("jeep", "jeep 2", "car in traffic"),
    "fruit": ("strawberry", "buckeye", "cut fruits", "orange", "apple"),
    "chair": ("folding chair",),
    "shoe": ("Loafer",),
    "drum": ("drum",),
    "rug": ("prayer rug",),
    "gun": ("cannon",),
    "person": ("soccer player", "basketball players"),
    "building": ("palace", "hotel", "old street"),
    "monkey": ("baboon",),
    "plant": ("potted aloe",),
}
"""The everyday word for groups of :data:`EVERYDAY_SOURCES` (and the photos it should find): the word a person
would type for what the photo shows. Beaker, thatch, yurt, bottlecap, squirrel, the city and the painting are
only distractors here."""

CONCEPT_WORDS = {
    "music": ("drum",),
    "war": ("cannon",),
    "army": ("cannon",),
    "soldier": ("cannon",),
    "chemistry": ("beaker",),
    "laboratory": ("beaker",),
    "religion": ("prayer rug",),
    "prayer": ("prayer rug",),
    "pet": ("bull mastiff", "dalmatian"),
    "dessert": ("strawberry",),
    "football": ("soccer player",),
    "city": ("city from the air", "old street"),
    "painting": ("starry night",),
    "street": ("old street",),
}
"""Words that name no ImageNet class and no hypernym of the photos' classes, with the photos of
:data:`EVERYDAY_SOURCES` that they are about."""

CONCEPT_CLASSES = {
    "kitchen": (
        "stove", "microwave", "refrigerator", "dishwasher", "toaster", "frying pan", "wok", "Dutch oven", "Crock Pot",
        "espresso maker", "coffeepot", "teapot", "mixing bowl", "spatula", "ladle", "can opener", "corkscrew",
        "waffle iron", "plate rack", "strainer", "measuring cup", "wooden spoon", "pitcher", "saltshaker", "caldron",
        "potpie",
    ),
    "music": (
        "acoustic guitar", "electric guitar", "banjo", "violin", "cello", "harp", "grand piano", "upright", "drum",
        "steel drum", "maraca", "gong", "chime", "marimba", "accordion", "harmonica", "sax", "trombone",
        "French horn", "cornet", "oboe", "bassoon", "flute", "panpipe", "ocarina", "organ", "drumstick",
        "microphone", "iPod", "cassette player", "tape player", "CD player", "loudspeaker",
    ),
    "ocean": (
        "seashore", "sandbar", "coral reef", "grey whale", "killer whale", "great white shark", "tiger shark",
        "hammerhead", "sea lion", "starfish", "jellyfish", "sea anemone", "sea urchin", "sea cucumber", "sea snake",
        "sea slug", "conch", "liner", "container ship", "submarine", "lifeboat", "schooner", "wreck", "scuba diver",
        "snorkel", "dugong", "loggerhead", "leatherback turtle", "puffer", "eel", "spiny lobster", "anemone fish",
        "coho", "barracouta", "rock beauty", "lionfish", "chiton", "drilling platform",
    ),
    "sport": (
        "basketball", "volleyball", "soccer ball", "rugby ball", "tennis ball", "golf ball", "ping-pong ball",
        "baseball", "football helmet", "racket", "golfcart", "ski", "dumbbell", "barbell", "balance beam",
        "horizontal bar", "parallel bars", "punching bag", "scoreboard", "ballplayer", "puck", "croquet ball",
        "bobsled", "swimming trunks", "running shoe", "sweatshirt", "jersey", "tricycle", "mountain bike", "canoe",
        "paddle",
    ),
    "farm": (
        "ox", "hog", "ram", "tractor", "harvester", "thresher", "plow", "barn", "hay", "corn", "ear", "hen", "cock",
        "water buffalo", "oxcart", "sorrel", "goose", "worm fence", "picket fence", "horse cart", "pickup",
        "rapeseed", "bee",
    ),
    "office": (
        "desk", "desktop computer", "monitor", "computer keyboard", "mouse", "laptop", "notebook", "file",
        "photocopier", "printer", "binder", "envelope", "fountain pen", "ballpoint", "rubber eraser",
        "pencil sharpener", "paper towel", "screen", "typewriter keyboard", "space bar", "modem", "hard disc",
        "web site",
    ),
    "winter": (
        "ski", "snowmobile", "snowplow", "bobsled", "dogsled", "mitten", "ski mask", "alp", "cardigan", "sweatshirt",
        "Arctic fox", "ptarmigan", "Eskimo dog", "Siberian husky", "malamute", "wool", "stole", "fur coat",
    ),
    "school": (
        "school bus", "notebook", "binder", "pencil box", "pencil sharpener", "rubber eraser", "ballpoint",
        "fountain pen", "library", "academic gown", "mortarboard", "backpack", "slide rule", "abacus", "desk",
        "book jacket", "comic book",
    ),
    "baby": ("crib", "cradle", "bassinet", "diaper", "bib", "teddy", "pinwheel", "bonnet", "toyshop"),
    "bathroom": (
        "bathtub", "tub", "shower curtain", "shower cap", "toilet seat", "toilet tissue", "washbasin",
        "soap dispenser", "medicine chest", "bath towel", "lotion", "sunscreen", "hair spray", "plunger",
        "hand blower",
    ),
}  # fmt: skip
"""Places and activities that ImageNet-1k has no class for, each with the classes (torchvision's labels) that a
person would call about it, written down before any measurement. Used on an index of one row per class, tagged
with its own label (``bench/bench_retrieval.py --cases everyday``)."""


def everyday_word_set(folder, *, per_class: int = 16, size: int = 256, seed: int = 0) -> dict:
    """Write the held-out photos of :data:`EVERYDAY_SOURCES` and their augmentations: ``folder/<label>/img_<n>.png``.

    As :func:`class_word_set` (``per_class`` images per photo: the photo and its crops, mirrors, rotations,
    scalings and colour changes), from the ImageNet validation photos that ship with foolbox 3.3.4
    (``pip install --no-deps foolbox==3.3.4``; the package is only read, never imported) and OpenCV's sample
    photos of Debian's ``opencv-doc`` (``apt-get install opencv-doc``). Query words and the groups they should
    find: :data:`EVERYDAY_WORDS`, :data:`CONCEPT_WORDS`.

    Returns
    -------
    dict
        ``{absolute path: ImageNet label of the photo}`` for every file written.
    """
    return class_word_set(folder, per_class=per_class, size=size, seed=seed, sources=EVERYDAY_SOURCES)
