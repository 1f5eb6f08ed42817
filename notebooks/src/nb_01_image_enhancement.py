import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "01",
    [
        (
            "Find a Butterworth low-pass cutoff (order 2) that gives the `noisy` camera image at least 25 dB PSNR. "
            "Use the widget or `enhance.frequency_filter` and `enhance.psnr`.",
            """
cutoffs = [0.05, 0.1, 0.2, 0.4]
scores = [enhance.psnr(camera, enhance.frequency_filter(noisy, cutoff=c, order=2)) for c in cutoffs]
answer = cutoffs[int(np.argmax(scores))]
""",
        ),
        (
            "Which low-pass shape rings next to edges (Gibbs overshoot): `'ideal'`, `'butterworth'` or `'gaussian'`?",
            "answer = max(overshoot, key=overshoot.get)",
        ),
        (
            "Which filter removes salt-and-pepper noise best while keeping edges: `'gaussian'` or `'median'`?",
            'answer = "median"',
        ),
        (
            "What is the mean of `enhance.frequency_filter(camera, highpass=True, cutoff=0.05)`?",
            "answer = float(enhance.frequency_filter(camera, highpass=True, cutoff=0.05).mean())",
        ),
        {
            "task": "The FilterDesigner `fd` below shows `camera` with Gaussian noise (its noise tab). Move its controls "
            "until the result reaches at least 26.5 dB PSNR against the clean camera (read it in the noise tab). "
            "Then write the settings you chose into the answer cell, so that they are saved with the notebook, "
            "and set `answer = fd`.",
            "setup": 'fd = FilterDesigner(camera, noise="gaussian", noise_amount=0.1)\nfd',
            "student": "# the settings you chose, e.g. fd.cutoff = ...\nanswer = None  # your answer here: answer = fd",
            "solution": "fd.cutoff = 0.2\nanswer = fd",
        },
    ],
)

write(
    "notebooks/01_image_enhancement.ipynb",
    [
        (
            "md",
            """
# Image enhancement: Fourier filters and median filters

This notebook covers two families of enhancement filters:

1. **Frequency-domain filters.** Transform the image with the 2-D Fourier transform, multiply the spectrum by a mask,
   transform back. A *low-pass* mask removes noise (and detail); a *high-pass* mask keeps edges and fine detail.
2. **Median filters.** Replace each pixel by the median of its neighbourhood. They remove impulse
   (salt-and-pepper) noise much better than any linear filter.

Everything runs offline on the bundled sample images. The engine is `cnnwidgets.engine.enhance`; the widget is
`cnnwidgets.FilterDesigner`.
""",
        ),
        (
            "code",
            """
import numpy as np
import matplotlib.pyplot as plt
from skimage import filters
from cnnwidgets import FilterDesigner, datasets
from cnnwidgets.engine import enhance

camera = datasets.sample("camera")
print(camera.shape, camera.dtype)
""",
        ),
        (
            "md",
            """
## The 2-D Fourier transform in short

The discrete Fourier transform writes an H×W image as a sum of 2-D sinusoids
$\\exp(2\\pi i (u y / H + v x / W))$. The coefficient $F(u, v)$ says how much of the
wave with frequency $(u/H, v/W)$ cycles per pixel the image contains. Frequencies run from 0 to 0.5 cycles per
pixel (the Nyquist limit). We show $\\log(1 + |F|)$ with zero frequency moved to the centre:
the bright middle is the slow variation (overall brightness, large shapes), the outer parts are edges and noise.
A line through the centre of the spectrum comes from edges perpendicular to it.
""",
        ),
        (
            "code",
            """
spec = enhance.spectrum(camera)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
axes[0].imshow(camera, cmap="gray"); axes[0].set_title("camera")
axes[1].imshow(spec, cmap="magma"); axes[1].set_title("centred log-magnitude spectrum")
for ax in axes: ax.axis("off")
plt.show()
assert np.unravel_index(spec.argmax(), spec.shape) == (256, 256)  # the DC term is the largest, at the centre
""",
        ),
        (
            "md",
            """
## Ideal, Butterworth, exponential and Gaussian masks

All masks depend only on the radial frequency $f = \\sqrt{f_y^2 + f_x^2}$ and the cutoff $c$ (a fraction of the
sampling frequency, as scikit-image's `cutoff_frequency_ratio`). With $D = f / c$ the low-pass gains are

| shape | $H(D)$ | gain at the cutoff |
|---|---|---|
| ideal | 1 if $D \\le 1$ else 0 | 1 → 0 (a hard step) |
| Butterworth (order $n$) | $1 / (1 + D^{2n})$ | 0.5 |
| exponential (order $n$) | $\\exp(-\\ln 2 \\cdot D^{n})$ | 0.5 |
| Gaussian | $\\exp(-D^2 / 2)$ | 0.61 |

A high-pass filter is $1 - H$. With a band width $w$ the same profiles give band-pass and band-stop filters
around the ring $f = c$. Higher Butterworth orders approach the ideal step.
""",
        ),
        (
            "code",
            """
f = np.linspace(0, 0.5, 400)
fig, ax = plt.subplots(figsize=(7, 3.5))
for shape in enhance.FILTER_SHAPES:
    ax.plot(f, enhance.radial_profile(f, shape=shape, cutoff=0.1, order=2), label=shape)
ax.plot(f, enhance.radial_profile(f, shape="butterworth", cutoff=0.1, order=8), "--", label="butterworth, order 8")
ax.axvline(0.1, color="gray", lw=0.5); ax.set_xlabel("radial frequency (cycles/pixel)"); ax.set_ylabel("gain"); ax.legend()
plt.show()
""",
        ),
        (
            "md",
            """
## Ringing of the ideal filter

The ideal mask is a hard step in frequency. Its spatial kernel is a 2-D sinc whose side lobes reappear next to
every edge as ripples (the Gibbs phenomenon). Smooth masks (Butterworth of low order, exponential, Gaussian)
have kernels with small or no side lobes, so they blur without ringing.
""",
        ),
        (
            "code",
            """
edge = np.zeros((128, 128), np.float32); edge[:, 40:88] = 1.0
row = {s: enhance.frequency_filter(edge, shape=s, cutoff=0.05, order=2)[64] for s in ("ideal", "butterworth", "gaussian")}
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(edge[64], "k:", label="input")
for s, r in row.items(): ax.plot(r, label=s)
ax.legend(); ax.set_title("one row of a low-passed bar"); plt.show()
overshoot = {s: float(r.max() - 1) for s, r in row.items()}
print({s: round(v, 3) for s, v in overshoot.items()})
assert overshoot["ideal"] > 0.05 and overshoot["gaussian"] < 0.001
""",
        ),
        (
            "md",
            """
## Low-pass against noise, high-pass for edges

`frequency_filter` equals `skimage.filters.butterworth` for the Butterworth shape (checked below), but computes
with `torch.fft` and caches the mask, so moving a slider costs little more than two FFTs.
""",
        ),
        (
            "code",
            """
noisy = enhance.add_noise(camera, kind="gaussian", amount=0.1, seed=0)
smooth = enhance.frequency_filter(noisy, shape="butterworth", cutoff=0.12, order=2)
edges = enhance.frequency_filter(camera, shape="butterworth", highpass=True, cutoff=0.05, order=2)
ref = filters.butterworth(noisy, cutoff_frequency_ratio=0.12, high_pass=False, order=2)
assert np.abs(smooth - ref).max() < 1e-3

fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
axes[0].imshow(noisy, cmap="gray"); axes[0].set_title(f"noisy, PSNR {enhance.psnr(camera, noisy):.1f} dB")
axes[1].imshow(np.clip(smooth, 0, 1), cmap="gray"); axes[1].set_title(f"low-pass, PSNR {enhance.psnr(camera, smooth):.1f} dB")
axes[2].imshow(edges, cmap="gray"); axes[2].set_title("high-pass of the clean image")
for ax in axes: ax.axis("off")
plt.show()
""",
        ),
        (
            "md",
            """
## The FilterDesigner

Drag the cutoff and order, switch between low-, high-, band-pass and band-stop, pick a shape. The
*spatial* tab has the median, weighted median (edit the weight grid) and adaptive median; the *noise* tab adds
noise to the clean image and reports PSNR/SSIM against it. `w.code` is the engine call that reproduces
`w.result`. Large photos are filtered on a preview (long side ≤ 1024) while you move the controls;
the **Full resolution** button (or `w.compute_full()`) filters the full image. Upload your own image with the button.
""",
        ),
        (
            "code",
            """
w = FilterDesigner(datasets.sample("astronaut"))
w
""",
        ),
        (
            "md",
            "Every control is a trait, so code can set it. After setting a trait call `w.wait()` before reading `result`.",
        ),
        (
            "code",
            """
w.shape, w.cutoff, w.order = "butterworth", 0.08, 3.0
w.wait()
print(w.code)
ns = {"image": w.source}
exec(w.code, ns)
assert np.array_equal(ns["result"], w.result)
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
print(w.source.shape, w.result.shape, w.result.dtype)
""",
            "(512, 512, 3) (512, 512, 3) float32\n",
        ),
        (
            "md",
            """
## Why the median beats linear filters on impulse noise

Salt-and-pepper noise sets a few pixels to pure black or white. A linear filter (any frequency mask, any
convolution) *averages* those outliers into their neighbours, leaving grey smudges. The median ignores them as
long as fewer than half of the window is corrupted, and it keeps edges sharp.
The adaptive median grows its window where the noise is dense and leaves clean pixels untouched.
""",
        ),
        (
            "code",
            """
sp = enhance.add_noise(camera, kind="salt_and_pepper", amount=0.2, seed=1)
results = {
    "Gaussian low-pass": enhance.frequency_filter(sp, shape="gaussian", cutoff=0.1),
    "median 3×3": enhance.median(sp, size=3),
    "median 5×5": enhance.median(sp, size=5),
    "centre-weighted median": enhance.weighted_median(sp, enhance.center_weighted_kernel(5, 5)),
    "adaptive median (≤ 7)": enhance.adaptive_median(sp, max_size=7),
}
fig, axes = plt.subplots(1, len(results) + 1, figsize=(18, 3.6))
axes[0].imshow(sp, cmap="gray"); axes[0].set_title(f"20 % salt and pepper\\n{enhance.psnr(camera, sp):.1f} dB")
scores = {}
for ax, (name, img) in zip(axes[1:], results.items()):
    scores[name] = enhance.psnr(camera, img)
    ax.imshow(np.clip(img, 0, 1), cmap="gray"); ax.set_title(f"{name}\\n{scores[name]:.1f} dB")
for ax in axes: ax.axis("off")
plt.show()
assert scores["median 3×3"] > scores["Gaussian low-pass"] + 5
assert scores["adaptive median (≤ 7)"] > scores["median 3×3"]
""",
        ),
        (
            "md",
            """
## Periodic noise and the notch filter

A sinusoidal interference is a pair of bright dots in the spectrum. A notch filter removes just those two
frequencies and leaves the rest of the image alone.
""",
        ),
        (
            "code",
            """
periodic = enhance.add_noise(camera, kind="periodic", amount=0.15, frequency=(0.1, 0.15))
cleaned = enhance.notch_filter(periodic, centers=[(0.1, 0.15)], radius=0.02)
fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
axes[0].imshow(periodic, cmap="gray"); axes[0].set_title(f"periodic noise, {enhance.psnr(camera, periodic):.1f} dB")
axes[1].imshow(enhance.spectrum(periodic), cmap="magma"); axes[1].set_title("two extra peaks")
axes[2].imshow(np.clip(cleaned, 0, 1), cmap="gray"); axes[2].set_title(f"notch filtered, {enhance.psnr(camera, cleaned):.1f} dB")
for ax in axes: ax.axis("off")
plt.show()
assert enhance.psnr(camera, cleaned) > enhance.psnr(camera, periodic) + 5
""",
        ),
        (
            "md",
            """
In the FilterDesigner: the *noise* tab adds the same periodic noise, the *notch / homomorphic* tab's **notch** mode
removes it. Click one of the two bright dots on the centred spectrum: a notch pair is placed there (its mirror
image is added for you) and drawn as red rings; click near a ring to remove it; the slider sets the radius. The
tab shows the PSNR before and after. Below, code clicks where the brightest dot is — the spectrum's `click`
trait is what the browser sets when you click (`notch.notches = [[0.1, 0.15]]` places the same pair directly).
""",
        ),
        (
            "code",
            """
notch = FilterDesigner(camera, method="notch", noise="periodic", noise_amount=0.15)
notch.wait()
spec = enhance.spectrum(periodic)
n_rows, n_cols = spec.shape                                # frequency 0 at row n_rows // 2, column n_cols // 2
fy, fx = np.ogrid[-(n_rows // 2):n_rows - n_rows // 2, -(n_cols // 2):n_cols - n_cols // 2]
off_centre = np.hypot(fy, fx) > 10                         # skip the image's own low frequencies
row, col = np.unravel_index(np.argmax(np.where(off_centre, spec, -np.inf)), spec.shape)
notch.spectrum_click.click = [(row + 0.5) / n_rows, (col + 0.5) / n_cols, 1]   # one click on the bright dot
notch.wait()
print(notch.notches, notch.metrics)
print(notch.code)
notch
""",
        ),
        (
            "code",
            """
[(fy, fx)] = notch.notches                                 # one pair, at ±(0.1, 0.15) cycles/pixel
assert min(np.hypot(fy - 0.1, fx - 0.15), np.hypot(fy + 0.1, fx + 0.15)) < 2 / 512
before, after = enhance.psnr(camera, enhance.add_noise(camera, kind="periodic", amount=0.15)), enhance.psnr(camera, notch.result)
print(f"PSNR against the clean image: {before:.1f} dB before, {after:.1f} dB after the notch")
assert after > before + 5 and np.isclose(notch.metrics["psnr_result"], after, atol=0.01)
""",
        ),
        (
            "md",
            """
## Homomorphic filtering: uneven lighting

An image is roughly illumination × reflectance. Taking the logarithm turns the product into a sum; illumination
varies slowly (low frequencies), reflectance quickly. The homomorphic filter damps the low frequencies of
$\\log(1 + \\text{image})$ (`gamma_low < 1`) and boosts the high ones (`gamma_high > 1`).
""",
        ),
        (
            "code",
            """
page = datasets.sample("page")
flat = enhance.homomorphic_filter(page, cutoff=0.02, gamma_low=0.4, gamma_high=1.5)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
axes[0].imshow(page, cmap="gray"); axes[0].set_title("page: dark on the left")
axes[1].imshow(flat, cmap="gray"); axes[1].set_title("homomorphic filter")
for ax in axes: ax.axis("off")
plt.show()
""",
        ),
        (
            "md",
            """
## Exercises

**1.** With the widget or the engine, find a Butterworth low-pass cutoff (order 2) that gives the `noisy`
camera image above at least 25 dB PSNR. Put your cutoff in `my_cutoff`.
""",
        ),
        (
            "code",
            """
my_cutoff = 0.12  # try values between 0.02 and 0.5
score = enhance.psnr(camera, enhance.frequency_filter(noisy, cutoff=my_cutoff, order=2))
print(f"{score:.2f} dB")
assert score >= 25
""",
        ),
        (
            "md",
            """
**2.** Set the widget to remove 10 % salt-and-pepper noise with a 3×3 median, then check with `w.metrics` that
the result is at least 10 dB better than the noisy input.
""",
        ),
        (
            "code",
            """
w.noise, w.noise_amount, w.seed = "salt_and_pepper", 0.1, 0
w.method, w.size = "median", 3
w.wait()
print(w.code)
print({k: round(v, 3) for k, v in w.metrics.items()})
assert w.metrics["psnr_result"] > w.metrics["psnr_input"] + 10
""",
        ),
        (
            "md",
            """
**3.** A high-pass filter removes the mean: its result averages to zero. Check it for the Butterworth and the
ideal high-pass on `camera`.
""",
        ),
        (
            "code",
            """
for shape in ("butterworth", "ideal"):
    hp = enhance.frequency_filter(camera, shape=shape, highpass=True, cutoff=0.05)
    assert abs(float(hp.mean())) < 1e-4, shape
print("both high-pass results have zero mean")
""",
        ),
    ]
    + EXERCISES,
)
