"""The checks of the tutorials' widget exercises: each grades a widget from its traits and ``result``, in the kernel,
with no browser, and returns :class:`Feedback` with a hint that fits the mistake."""

from __future__ import annotations

import functools

from .registry import exercise, hint, noisy_camera, ok


def _drawn(cls_name: str, variable: str):
    """The reader of a ``cls_name`` answer held in ``variable``: ``answer`` → (the widget once its latest picture is
    drawn, None), or (None, a hint) when ``answer`` is not one or shows no result."""

    def read(answer):
        if type(answer).__name__ != cls_name or not hasattr(answer, "wait"):
            return None, hint(f"Answer with the widget itself: answer = {variable} (a {cls_name}).")
        try:
            answer.wait(120)
        except TimeoutError:
            return None, hint(f"{variable} is still drawing; run the cell again.")
        if getattr(answer, "result", None) is None:
            return None, hint(f"{variable} shows no result: {answer.status or 'look at its status line'}.")
        return answer, None

    return read


def _grades(read):
    """Decorate a check of a widget: it runs on the widget ``read(answer)`` gives, with the same context; any other
    answer gets ``read``'s hint."""

    def decorate(check):
        @functools.wraps(check)
        def graded(answer, **context):
            widget, bad = read(answer)
            return bad if bad is not None else check(widget, **context)

        return graded

    return decorate


# the readers of the widget answers, named after the variables that hold them in the notebooks
_fd = _drawn("FilterDesigner", "fd")
_ts = _drawn("ThresholdSegmenter", "ts")
_lv = _drawn("LayerVisualizer", "lv")
_box = _drawn("SearchBox", "box")
_w = _drawn("Pipeline", "w")

FD_MIN_PSNR = 26.5


@_grades(_fd)
def _nb01_ex5_hidden(w):
    """The result is what the widget's filter gives the noisy camera, and it reaches the PSNR, recomputed here."""
    import numpy as np

    from ..engine import enhance

    camera, noisy = noisy_camera()
    want = enhance.frequency_filter(noisy, shape=w.shape, cutoff=w.cutoff, order=w.order)
    got = np.asarray(w.result)
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-4):
        return hint("fd's picture is not the filter of the noisy camera: keep the setup cell as it is.")
    if not float(enhance.psnr(camera, want)) >= FD_MIN_PSNR:
        return hint(f"The result is below {FD_MIN_PSNR} dB.")
    return ok("")


@exercise(
    "01",
    5,
    "set the FilterDesigner to a low-pass that reaches 26.5 dB",
    "Drag fd's cutoff, read PSNR in the noise tab, then write the cutoff you chose: fd.cutoff = ...",
    hidden=_nb01_ex5_hidden,
)
@_grades(_fd)
def _nb01_ex5(w):
    if w.method != "frequency" or w.highpass or w.band:
        return hint("Noise lives in the high frequencies: use a low-pass in the frequency tab (not high- or band-).")
    if (w.noise, w.noise_amount, w.seed) != ("gaussian", 0.1, 0):
        return hint("Keep the noise as the setup cell made it (gaussian, amount 0.1, seed 0): change the filter only.")
    score = float(w.metrics.get("psnr_result", float("nan")))
    if score >= FD_MIN_PSNR:
        return ok(f"{w.shape}, cutoff {w.cutoff:g}: {score:.2f} dB against the clean camera.")
    if w.cutoff < 0.15:
        return hint(f"{score:.2f} dB: the result is too blurred. Raise the cutoff.")
    return hint(f"{score:.2f} dB: too much noise passes. Lower the cutoff, or try another shape.")


TS_MIN_IOU = 0.9


def _coins_reference():
    from skimage import filters

    from ..datasets import sample

    coins = sample("coins")
    return coins, coins > filters.threshold_otsu(coins)


def _iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


@_grades(_ts)
def _nb02_ex5_hidden(w):
    """The mask is the coins image above the widget's threshold, and it overlaps the reference by 0.9, recomputed."""
    import numpy as np

    coins, ref = _coins_reference()
    mask = np.asarray(w.result)
    want = coins > w.value
    if mask.shape != want.shape or not np.array_equal(mask ^ bool(w.invert), want):
        return hint("ts's mask is not the coins image thresholded at ts.value: keep the setup cell as it is.")
    if not _iou(want, ref) >= TS_MIN_IOU:
        return hint("The coins and the background are not separated yet.")
    return ok("")


@exercise(
    "02",
    5,
    "set the ThresholdSegmenter to a threshold that separates the coins",
    "Drag ts's threshold until the mask shows each coin and no background, then write it: ts.value = ...",
    hidden=_nb02_ex5_hidden,
)
@_grades(_ts)
def _nb02_ex5(w):
    if w.mode != "global" or w.method != "fixed" or w.invert:
        return hint("Use ts as the setup cell made it (a fixed global threshold, not inverted): set ts.value only.")
    _, ref = _coins_reference()
    score = _iou(w.result, ref)
    if score >= TS_MIN_IOU:
        return ok(f"threshold {w.value:g}: the coins stand apart from the background (overlap {score:.2f}).")
    covered = w.result.mean() > ref.mean()
    if covered:
        return hint(f"At {w.value:g} the background comes in with the coins. Raise the threshold.")
    return hint(f"At {w.value:g} parts of the coins are missing. Lower the threshold.")


@_grades(_lv)
def _nb03_ex5_hidden(w):
    """The maps are the chosen layer's activation of EfficientNet-Lite0 on the widget's image, captured again."""
    import numpy as np

    from ..datasets import list_samples, sample
    from ..engine import layers
    from ..engine.models import shared_model
    from ..io import load_image

    r = w.result
    if w.model != "efficientnet_lite0" or r.get("layer") != w.layer:
        return hint("lv must show efficientnet_lite0, as the setup cell made it.")
    named = isinstance(w.image, str) and w.image in list_samples()  # a sample's name (the widget's default)
    image = sample(w.image, mode="rgb") if named else load_image(w.image, mode="rgb")
    again = layers.capture(shared_model(w.model), image, [w.layer])[w.layer]
    if again.shape != r["activation"].shape or not np.allclose(again, r["activation"], rtol=1e-4, atol=1e-5):
        return hint("lv's maps are not the chosen layer's: set lv.layer only.")
    return ok("")


@exercise(
    "03",
    5,
    "set the LayerVisualizer to the first layer whose maps are 7 × 7",
    "Go down lv's layer list and watch the size of the feature maps; write the layer you chose: lv.layer = ...",
    hidden=_nb03_ex5_hidden,
)
@_grades(_lv)
def _nb03_ex5(w):
    size = tuple(w.result["shape"][-2:])
    names = list(w.controls["layer"].options)
    if size != (7, 7):
        coarser = "deeper" if size[0] > 7 else "earlier"
        return hint(f"{w.layer} gives {size[0]} × {size[1]} maps. Look at a {coarser} layer.")
    sizes = _map_sizes(w.model)
    first = next((n for n in names if sizes.get(n) == (7, 7)), None)
    if w.layer != first:
        return hint(f"{w.layer} has 7 × 7 maps, but an earlier layer already has them.")
    return ok(f"{w.layer}: the input is 224 pixels and the network has halved it five times, to 7.")


def _map_sizes(model_name: str) -> dict:
    """Layer name → (height, width) of its maps on a 224-pixel input, from one forward pass."""
    import numpy as np

    from ..engine import layers
    from ..engine.models import shared_model

    acts = layers.capture(shared_model(model_name), np.zeros((224, 224, 3), np.uint8))
    return {name: tuple(a.shape[-2:]) for name, a in acts.items() if a.ndim >= 3}


@_grades(_box)
def _nb05_ex5_hidden(w):
    """The gallery is what the index gives the box's words: ``box.index.search(text=box.text)``, run again."""
    want = [h.path for h in w.index.search(text=w.text, k=5)]
    if [r["path"] for r in w.results[:5]] != want:
        return hint("box's results are not what its query gives: set box.text only.")
    return ok("")


@exercise(
    "05",
    5,
    "type a query into the SearchBox that finds coffee without saying it",
    "The photos' predicted labels are stored as tags: type a word only they know into box, then box.text = ...",
    hidden=_nb05_ex5_hidden,
)
@_grades(_box)
def _nb05_ex5(w, *, folder="coffee"):
    text = (w.text or "").strip()
    if not text:
        return hint("Type words into box (box.text = ...).")
    if folder in text.lower():
        return hint(f"'{folder}' is in the file names, so keywords find it. Use a word only the labels know.")
    top = [r["path"].replace("\\", "/") for r in w.results[:5]]
    inside = sum(f"/{folder}/" in p for p in top)
    if len(top) == 5 and inside == 5:
        return ok(f"All 5 first results for {text!r} are {folder} photos, found through their predicted labels.")
    return hint(f"{inside} of the first 5 results for {text!r} are {folder} photos. Look at the tags they show.")


@_grades(_w)
def _nb06_ex4_hidden(w):
    """The regions are what the chain's own script gives: ``w.code`` run again on the working image."""
    scope = {"image": w.working_image, "index": w.index}
    exec(w.code, scope)
    if [r.bbox for r in scope["regions"]] != [r.bbox for r in w.result["regions"]]:
        return hint("w's regions are not what its settings give: set w.enhancer.cutoff only.")
    return ok("")


@exercise(
    "06",
    4,
    "set the pipeline's cutoff so that it finds one region per coin",
    "Drag w's cutoff up from 0.05 and count the regions in the status line; then w.enhancer.cutoff = ...",
    hidden=_nb06_ex4_hidden,
)
@_grades(_w)
def _nb06_ex4(w):
    if not w.enhance_on:
        return hint("Keep 'enhance first' on: the exercise is about the low-pass filter's cutoff.")
    n = len(w.result["regions"])
    cutoff = w.enhancer.cutoff
    if n == 24:
        return ok(f"cutoff {cutoff:g}: 24 regions, one per coin.")
    if n < 24:
        return hint(f"{n} regions at cutoff {cutoff:g}: neighbouring coins merge. Raise the cutoff.")
    return hint(f"{n} regions at cutoff {cutoff:g}: noise specks count as regions. Lower the cutoff.")


DASH_MIN_ACCURACY = 0.92


def _trained(answer):
    """(the dashboard once its training run has ended, None), or (None, a hint)."""
    import time

    if type(answer).__name__ != "TrainingDashboard":
        return None, hint("Answer with the widget itself: answer = dash2 (a TrainingDashboard).")
    deadline = time.monotonic() + 300
    while answer.running and time.monotonic() < deadline:
        time.sleep(0.1)
    if answer.running:
        return None, hint("dash2 is still training; run the cell again when it is done.")
    if answer.result is None:
        return None, hint("dash2 has not trained yet: call dash2.start() after setting its learning rate.")
    return answer, None


@_grades(_trained)
def _nb04_ex5_hidden(w):
    """The curves are what the dashboard's settings give: its own ``code`` trained again, to the same accuracy."""
    scope: dict = {}
    exec(w.code, scope)
    again = scope["history"].final["val_accuracy"]
    if abs(again - w.result.final["val_accuracy"]) > 0.02:
        return hint("dash2's result is not what its settings train: set dash2.lr, then dash2.start().")
    return ok("")


@exercise(
    "04",
    5,
    "set the TrainingDashboard's learning rate so that 2 epochs reach 0.92",
    "Try learning rates ten times apart (0.5, 0.05, 0.005, 0.0005) with Start, then write yours: dash2.lr = ...",
    hidden=_nb04_ex5_hidden,
)
@_grades(_trained)
def _nb04_ex5(w):
    if (w.epochs, w.seed, w.val) != (2, 0, 0.2):
        return hint("Keep dash2's epochs (2), seed and validation split as the setup cell made them: change lr only.")
    acc = float(w.result.final["val_accuracy"])
    if acc >= DASH_MIN_ACCURACY:
        return ok(f"lr {w.lr:g}: validation accuracy {acc:.3f} after 2 epochs.")
    if acc < 0.2:
        return hint(f"lr {w.lr:g}: accuracy {acc:.2f}, chance level. The steps are so large that training diverges.")
    return hint(f"lr {w.lr:g}: accuracy {acc:.3f}. Try a learning rate ten times larger or smaller.")
