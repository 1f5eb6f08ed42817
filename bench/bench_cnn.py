"""Benchmark: images per second from JPEG files on disk to L2-normalised efficientnet_lite0 embeddings.

Two file sets, ``--images`` (default 1,000) seeded JPEGs each (quality 90), written to a temporary folder
from random crops (scale 0.3–1) and flips of the seven colour photographs bundled with scikit-image:

* web: long side 400–640 px (bicubic), like images from the web; the naive loop is forward-bound here;
* camera: long side 2400–3200 px (bilinear upscale plus σ = 3 fixed-pattern noise, so the files carry
  roughly the entropy of real camera files, ≈ 0.9 MB each), like phone/camera photos; full-size
  decoding dominates the naive loop here.

Cases per set, in one process, one JSON line each (``"set"`` names the set):

* naive: the loop people write first — PIL open, convert, resize(256) + centre crop(224), normalise,
  one forward pass per image (fp32), pooled features, L2 norm. Timed on the first ``--naive-images``
  files (default 200) to keep the run short; images/s is a rate, comparable with the others.
* embed_fp32: :func:`cnnwidgets.engine.models.embed` as users call it (batch 32: thread-pool decoding
  with JPEG draft-mode reduced decoding, alternating with the forward pass where torch uses every core;
  BatchNorm folded into the convolutions (fp32 only); forward in chunks of 8 on CPU; channels-last input).
* embed_auto: the same with ``precision="auto"`` (bfloat16 autocast only where
  :func:`cnnwidgets.engine.models.bf16_supported` says the device has native bf16: AVX512-BF16/AMX CPUs,
  CUDA); skipped elsewhere. Reports the embeddings' cosine similarity to fp32 (minimum over all images;
  stated tolerance ≥ 0.99) and retrieval agreement: the fraction of queries whose top-1 neighbour
  (excluding itself) is the same as with fp32, for the queries where it differs the largest fp32
  similarity gap between the two candidates (near 0: a tie between near-duplicate crops), the fraction
  whose bf16 top-1 is the fp32 top-1 or within 0.005 of its fp32 similarity (a tie), and the mean
  overlap of the top-10 neighbour sets.

Then, once: the forward pass alone on a ready N×3×224×224 batch of 32 (fp32 and, when supported, bf16),
as the issue measured it (batch 32, BatchNorm not folded) and as embed runs it (chunks of 8; BatchNorm
folded for fp32, not for bf16),
to show how much of the budget decoding takes.

Issue 10 adds, per set: naive_batch32 (the issue's naive loop: PIL decode, torchvision Resize/CenterCrop, eager
forward, batch 32), embed_onnx (``backend="onnx"``: the cached, verified ONNX Runtime export; cosine to torch fp32
and the fraction of queries whose top-10 neighbours are identical), cnn_with_tags_onnx (embeddings and tags from
one pass) and index_build_cnn_color (``ImageIndex.build(folder, descriptors=("cnn", "color"))`` in a fresh
process: images/s of the build call and of the whole process, its peak RSS (VmHWM), and one index_build_phase line
per step of its fixed cost, wall and CPU seconds; ``--no-build`` skips it); and the ONNX Runtime forward pass alone
at batch 8 (what embed runs), 16 and 32, and at batch 8 with ONNX Runtime's spinning threads (its default; the
sessions cnnwidgets makes do not spin). ``--forward-only`` runs only the forward-pass cases, ``--forward-repeats``
sets how many timed passes their median is taken over. Every line carries the 1-minute load average.

Targets (issue 5): embed ≥ 5× the naive loop and ≥ 100 images/s on the 2-core machine. Issue 10: index build
≥ 4× naive_batch32 (web) and ≥ 3× (camera), ≥ 100 images/s quiet; forward-only ≥ 110 images/s; cosine ≥ 0.9999.

Usage: ``python bench/bench_cnn.py [--images 1000] [--naive-images 200] [--batch-size 32] [--sets web,camera]
[--no-build] [--forward-only] [--forward-repeats 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")


def _photos():
    from cnnwidgets.datasets import list_samples, sample

    # the colour photographs; "colorwheel" is left out: a synthetic flat-colour test pattern, not a photo
    # (its crops are near-identical and are where bf16 strays most from fp32, cosine ≈ 0.97–0.99)
    names = [n for n in list_samples() if n != "colorwheel"]
    return [s for s in (sample(name) for name in names) if s.ndim == 3 and s.shape[2] == 3]


def make_jpegs(
    folder: str,
    n: int,
    seed: int = 0,
    *,
    long_side=(400, 640),
    noise: float = 0.0,
    fast_upscale: bool = False,
    prefix: str = "img",
    workers: int | None = None,
) -> list[str]:
    """Write ``n`` seeded JPEGs (quality 90): random crops (scale 0.3–1) and flips of the sample
    photographs, resized (bicubic; bilinear when ``fast_upscale`` and enlarging) to a long side drawn
    from ``long_side``; ``noise``
    (σ in grey levels) adds fixed-pattern sensor-like noise, so upscaled files carry the entropy of
    real camera files rather than compressing like smooth gradients."""
    import concurrent.futures

    from PIL import Image, ImageChops

    sources = _photos()
    rng = np.random.default_rng(seed)
    jobs = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        scale = rng.uniform(0.3, 1.0)
        ch, cw = max(16, int(h * scale)), max(16, int(w * scale))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        flip = bool(rng.random() < 0.5)
        side = int(rng.integers(long_side[0], long_side[1] + 1))
        off = (int(rng.integers(0, 64)), int(rng.integers(0, 64)))
        jobs.append((i, src, y, x, ch, cw, flip, side, off))
    tile = None
    if noise > 0:
        side_max = long_side[1] + 64
        tile = Image.fromarray(
            np.clip(np.random.default_rng(seed + 1).normal(128, noise, (side_max, side_max, 3)), 0, 255).astype(
                np.uint8
            )
        )

    def write(job):
        i, src, y, x, ch, cw, flip, side, off = job
        crop = src[y : y + ch, x : x + cw]
        if flip:
            crop = crop[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(crop))
        f = side / max(img.size)
        size = (max(1, round(img.size[0] * f)), max(1, round(img.size[1] * f)))
        img = img.resize(size, Image.BILINEAR if fast_upscale and f > 1 else Image.BICUBIC)
        if tile is not None:
            img = ImageChops.add(img, tile.crop((off[0], off[1], off[0] + size[0], off[1] + size[1])), 1.0, -128)
        p = os.path.join(folder, f"{prefix}_{i:04d}.jpg")
        img.save(p, quality=90)
        return p

    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as ex:
        return list(ex.map(write, jobs))


def naive_embed(model, paths):
    """One image at a time: PIL decode, resize, crop, normalise, forward, pool, normalise."""
    import torch
    from PIL import Image

    cfg = model.cnnw_config
    mean = torch.tensor(cfg["mean"]).view(3, 1, 1)
    std = torch.tensor(cfg["std"]).view(3, 1, 1)
    out = []
    with torch.inference_mode():
        for p in paths:
            img = Image.open(p).convert("RGB")
            w, h = img.size  # short side to 256, as torchvision's Resize(256)
            size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
            img = img.resize(size, Image.BICUBIC)
            w, h = img.size
            left, top = (w - 224) // 2, (h - 224) // 2
            img = img.crop((left, top, left + 224, top + 224))
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)
            x = ((x - mean) / std)[None]
            f = model.forward_head(model.forward_features(x), pre_logits=True)
            out.append(torch.nn.functional.normalize(f, dim=1)[0].numpy())
    return np.stack(out)


def naive_batch_embed(model, paths, batch_size=32):
    """The issue's naive loop: PIL decode, torchvision Resize(256)/CenterCrop(224), eager forward, batch 32."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    cfg = model.cnnw_config
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(cfg["mean"], cfg["std"])])
    out = []
    with torch.inference_mode():
        for i in range(0, len(paths), batch_size):
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[i : i + batch_size]])
            f = model.forward_head(model.forward_features(x), pre_logits=True)
            out.append(torch.nn.functional.normalize(f, dim=1).numpy())
    return np.concatenate(out)


_BUILD_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
start_w, start_c = time.perf_counter(), time.process_time()
phases, last = [], [start_w, start_c]


def mark(name):
    w, c = time.perf_counter(), time.process_time()
    phases.append({"phase": name, "wall_s": round(w - last[0], 3), "cpu_s": round(c - last[1], 3)})
    last[:] = [time.perf_counter(), time.process_time()]


import torch
mark("import torch")
from cnnwidgets.index import ImageIndex, build as building
mark("import cnnwidgets.index (FAISS, OpenCV, PIL)")
from cnnwidgets.device import apply_thread_policy
apply_thread_policy()
mark("thread policy (threadpoolctl included)")
from cnnwidgets.engine.models import onnx_export
from cnnwidgets.engine.models import runtime as backend
runner = backend.pretrained_onnx(sys.argv[2]) if hasattr(backend, "pretrained_onnx") else None
if runner is not None:  # the build describes with the recorded export: no timm, no torch model
    session = runner
    mark("ONNX Runtime model from the recorded export (weights digest, InferenceSession)")
else:
    import timm
    mark("import timm (torchvision, torch._dynamo)")
    from cnnwidgets.engine.models import shared_model
    model = shared_model(sys.argv[2])
    mark("create the model, load its weights")
    onnx_export.weights_key(model)
    mark("ONNX cache key (hash of every weight)")
    session = backend.onnx_model(model)
    mark("ONNX Runtime session (key again, file, InferenceSession)")
setup_w = time.perf_counter() - start_w
seen = [0]
describe = building.describe_images


def first_timed(*args, **kwargs):
    out = describe(*args, **kwargs)
    seen[0] += 1
    if seen[0] == 1:
        mark("build: list files, first batch (decode + describe)")
    return out


building.describe_images = first_timed
t = time.perf_counter()
ix = ImageIndex.build(sys.argv[1], descriptors=("cnn", "color"), model=sys.argv[2], progress=False)
build_s = time.perf_counter() - t
mark("build: the other batches")
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's resident size when it was spawned
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"images": len(ix), "skipped": len(ix.skipped), "seconds": build_s,
                  "fresh_process_s": time.perf_counter() - start_w, "setup_s": setup_w,
                  "cpu_s": time.process_time() - start_c, "onnx": not isinstance(session, str),
                  "timm_imported": "timm" in sys.modules, "torch_model_built": runner is None,
                  "peak_rss_mb": hwm_kb / 1024, "phases": phases}))
"""


def index_build(folder: str, model: str = "efficientnet_lite0") -> dict:
    """``ImageIndex.build(folder, descriptors=("cnn", "color"))`` in a fresh process, its fixed cost step by step.

    The child does in order, each timed (wall and CPU seconds), what a fresh build does before its first batch:
    import torch and cnnwidgets.index, apply the thread policy, then either open the recorded ONNX Runtime export
    of the packaged model (:func:`cnnwidgets.engine.models.runtime.pretrained_onnx`, what the build uses when a
    process has run the model before) or import timm, create the model, compute the ONNX cache key and open the
    session; then it times the build itself (first batch apart). ``seconds`` is the build call after that setup,
    ``fresh_process_s`` everything from the first import; ``peak_rss_mb`` is the child's peak RSS (``VmHWM``; its
    ``ru_maxrss`` would start at this process's resident size).
    """
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _BUILD_CHILD, folder, model], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def neighbours(e: np.ndarray, k: int = 10) -> np.ndarray:
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1)[:, :k]


def emit(case: dict):
    case.setdefault("loadavg_1min", round(os.getloadavg()[0], 2))  # others' load on the shared machine, as it ran
    print(json.dumps(case), flush=True)


def run_set(name, model, paths, args, common):
    """naive, embed fp32 and embed precision="auto" on one file set; one JSON line each."""
    from cnnwidgets.engine import models as M

    tag = {"set": name, **common}
    M.embed(model, paths[: args.batch_size], batch_size=args.batch_size, progress=False)  # warm-up (and BN folding)
    sub = paths[: args.naive_images]
    naive_embed(model, sub[:2])
    t = time.perf_counter()
    ref_sub = naive_embed(model, sub)
    naive_s = time.perf_counter() - t
    naive_rate = len(sub) / naive_s
    emit(
        {"case": "naive", **tag, "images": len(sub), "seconds": round(naive_s, 2), "images_per_s": round(naive_rate, 1)}
    )

    naive_batch_embed(model, sub[:2])
    t = time.perf_counter()
    naive_batch_embed(model, sub, args.batch_size)
    nb_s = time.perf_counter() - t
    nb_rate = len(sub) / nb_s
    emit(
        {
            "case": "naive_batch32",
            **tag,
            "images": len(sub),
            "seconds": round(nb_s, 2),
            "images_per_s": round(nb_rate, 1),
            "speedup_vs_naive": round(nb_rate / naive_rate, 2),
        }
    )

    t = time.perf_counter()
    e32 = M.embed(model, paths, batch_size=args.batch_size, progress=False, precision="fp32", backend="torch")
    s32 = time.perf_counter() - t
    cos_naive = (e32[: len(sub)] * ref_sub).sum(1)
    emit(
        {
            "case": "embed_fp32",
            **tag,
            "images": len(paths),
            "seconds": round(s32, 2),
            "images_per_s": round(len(paths) / s32, 1),
            "speedup_vs_naive": round(len(paths) / s32 / naive_rate, 2),
            "min_cosine_vs_naive": round(float(cos_naive.min()), 4),
            "mean_cosine_vs_naive": round(float(cos_naive.mean()), 5),
            "speedup_vs_naive_batch32": round(len(paths) / s32 / nb_rate, 2),
        }
    )

    M.embed(model, paths[: args.batch_size], batch_size=args.batch_size, progress=False, backend="onnx")  # export
    t = time.perf_counter()
    eox = M.embed(model, paths, batch_size=args.batch_size, progress=False, backend="onnx")
    sox = time.perf_counter() - t
    cos = (eox * e32).sum(1)
    top10 = float(np.mean([(a == b).all() for a, b in zip(neighbours(e32), neighbours(eox))]))
    emit(
        {
            "case": "embed_onnx",
            **tag,
            "images": len(paths),
            "seconds": round(sox, 2),
            "images_per_s": round(len(paths) / sox, 1),
            "speedup_vs_naive": round(len(paths) / sox / naive_rate, 2),
            "speedup_vs_naive_batch32": round(len(paths) / sox / nb_rate, 2),
            "speedup_vs_embed_torch": round(s32 / sox, 2),
            "min_cosine_vs_torch_fp32": round(float(cos.min()), 6),
            "top10_identical_vs_torch": round(top10, 4),
        }
    )

    from cnnwidgets.engine import features

    t = time.perf_counter()
    etg, _ = features.cnn_with_tags(paths, model=model, progress=False)
    stg = time.perf_counter() - t
    emit(
        {
            "case": "cnn_with_tags_onnx",
            **tag,
            "images": len(paths),
            "seconds": round(stg, 2),
            "images_per_s": round(len(paths) / stg, 1),
            "speedup_vs_naive_batch32": round(len(paths) / stg / nb_rate, 2),
            "min_cosine_vs_torch_fp32": round(float((etg * e32).sum(1).min()), 6),
        }
    )

    if args.build:
        b = index_build(os.path.dirname(paths[0]))
        phases = b.pop("phases")
        emit(
            {
                "case": "index_build_cnn_color",
                **tag,
                **{k: round(v, 2) if isinstance(v, float) else v for k, v in b.items()},
                "images_per_s": round(b["images"] / b["seconds"], 1),
                "speedup_vs_naive_batch32": round(b["images"] / b["seconds"] / nb_rate, 2),
                "fresh_process_images_per_s": round(b["images"] / b["fresh_process_s"], 1),
                "fresh_process_speedup_vs_naive_batch32": round(b["images"] / b["fresh_process_s"] / nb_rate, 2),
                "loadavg_1min": round(os.getloadavg()[0], 2),
            }
        )
        for ph in phases:
            emit({"case": "index_build_phase", "set": name, **ph})

    if not common["bf16_supported"]:
        emit({"case": "embed_auto_bf16", **tag, "skipped": "no native bf16 on this device; auto uses fp32"})
        return
    t = time.perf_counter()
    e16 = M.embed(model, paths, batch_size=args.batch_size, progress=False, precision="auto")
    s16 = time.perf_counter() - t
    cos = (e32 * e16).sum(1)
    n32, n16 = neighbours(e32), neighbours(e16)
    top1 = float((n32[:, 0] == n16[:, 0]).mean())
    sim32 = e32 @ e32.T
    idx = np.arange(len(e32))
    tied = float((sim32[idx, n32[:, 0]] - sim32[idx, n16[:, 0]] <= 0.005).mean())
    # where the top-1 differs, how far apart the two candidates were in fp32 similarity (a near tie or not)
    rows = np.nonzero(n32[:, 0] != n16[:, 0])[0]
    gap = float(max((sim32[r, n32[r, 0]] - sim32[r, n16[r, 0]] for r in rows), default=0.0))
    overlap = float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(n32, n16)]))
    emit(
        {
            "case": "embed_auto_bf16",
            **tag,
            "images": len(paths),
            "seconds": round(s16, 2),
            "images_per_s": round(len(paths) / s16, 1),
            "speedup_vs_naive": round(len(paths) / s16 / naive_rate, 2),
            "min_cosine_vs_fp32": round(float(cos.min()), 4),
            "p01_cosine_vs_fp32": round(float(np.quantile(cos, 0.01)), 4),
            "mean_cosine_vs_fp32": round(float(cos.mean()), 5),
            "tolerance": 0.99,
            "within_tolerance": bool(cos.min() >= 0.99),
            "top1_neighbour_same": round(top1, 4),
            "top1_same_or_tied_0.005": round(tied, 4),
            "top1_changed_max_fp32_gap": round(gap, 4),
            "top10_overlap": round(overlap, 4),
        }
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=1000, help="files per set")
    ap.add_argument("--naive-images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sets", default="web,camera", help="comma-separated: web, camera")
    ap.add_argument("--no-build", dest="build", action="store_false", help="skip the ImageIndex.build case")
    ap.add_argument("--forward-repeats", type=int, default=7, help="timed passes over the ready batch (median)")
    ap.add_argument("--forward-only", action="store_true", help="only the forward pass on a ready batch (no files)")
    args = ap.parse_args()

    import torch

    from cnnwidgets.device import get_device
    from cnnwidgets.engine import models as M

    device = get_device()
    model = M.create_model("efficientnet_lite0")
    bf16 = M.bf16_supported(device)
    common = {
        "model": "efficientnet_lite0",
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "bf16_supported": bf16,
    }
    specs = {
        "web": {"long_side": (400, 640)},
        "camera": {"long_side": (2400, 3200), "noise": 3.0, "fast_upscale": True},
    }

    with tempfile.TemporaryDirectory() as tmp:
        for name in [n.strip() for n in args.sets.split(",") if n.strip() and not args.forward_only]:
            t = time.perf_counter()
            paths = make_jpegs(tmp, args.images, prefix=name, **specs[name])
            mb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
            print(
                f"# {name}: wrote {len(paths)} JPEGs (mean {mb:.2f} MB) in {time.perf_counter() - t:.1f} s", flush=True
            )
            run_set(name, model, paths, args, common)
            for p in paths:
                os.remove(p)

    # the forward pass alone on a ready batch: as the issue measured it (batch 32, channels-last, BN not
    # folded) and as embed runs it (BN folded, chunks of 8, channels-last)
    x = torch.randn(args.batch_size, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    folded = M._fold_bn(model)
    chunk = M._CPU_FORWARD_CHUNK if device.type == "cpu" else args.batch_size
    for prec in ("fp32", "bf16") if bf16 else ("fp32",):
        # embed folds BatchNorm for fp32 only
        variants = {
            f"b{args.batch_size}_plain": (model, args.batch_size),
            f"b{chunk}_{'folded' if prec == 'fp32' else 'plain'}": (folded if prec == "fp32" else model, chunk),
        }
        for label, (net, bs) in variants.items():
            with torch.inference_mode(), M._autocast(device, prec):
                for xb in x.split(bs):
                    net(xb)
                t = time.perf_counter()
                for _ in range(3):
                    for xb in x.split(bs):
                        net(xb)
                dt = (time.perf_counter() - t) / 3
            emit(
                {
                    "case": f"forward_only_{label}_{prec}",
                    **common,
                    "batch": bs,
                    "images_per_s": round(args.batch_size / dt, 1),
                }
            )
    import statistics

    from cnnwidgets.engine.models.runtime import onnx_model

    session = onnx_model(model)
    spinning = _spinning_session(session)
    xs = x.contiguous().cpu().numpy()
    # embed runs chunks of `chunk` on the session as made; the other batch sizes and a session whose threads
    # busy-wait between operators (ONNX Runtime's default) for comparison
    variants = [(bs, "", session) for bs in dict.fromkeys((chunk, 16, args.batch_size))] + [
        (chunk, "_spinning", spinning)
    ]
    for bs, label, sess in variants:
        parts = np.split(xs, max(1, len(xs) // bs))
        for xb in parts:
            sess.run(xb)
        times = []
        for _ in range(args.forward_repeats):
            t = time.perf_counter()
            for xb in parts:
                sess.run(xb)
            times.append(time.perf_counter() - t)
        emit(
            {
                "case": f"forward_only_b{bs}_onnx_fp32{label}",
                **common,
                "batch": bs,
                "onnx_threads": sess.threads,
                "images_per_s": round(len(xs) / statistics.median(times), 1),
                "images_per_s_best": round(len(xs) / min(times), 1),
                "repeats": args.forward_repeats,
                "loadavg_1min": round(os.getloadavg()[0], 2),
            }
        )


def _spinning_session(found):
    """A copy of the OnnxModel ``found`` whose intra-op threads busy-wait between operators."""
    import copy

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = found.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    out = copy.copy(found)
    out.session = ort.InferenceSession(str(found.path), opts, providers=["CPUExecutionProvider"])
    return out


if __name__ == "__main__":
    main()
