"""The checks of the tutorials' written answers, notebook by notebook: each returns :class:`Feedback` with a
hint that fits the mistake (the widget exercises are in :mod:`cnnwidgets.exercises.widget_checks`)."""

from __future__ import annotations

from .registry import as_choice, as_number, as_shape, as_word, exercise, hint, noisy_camera, ok

# ---------------------------------------------------------------- 00 getting started


@exercise("00", 1, "the shape of the coffee sample", "Call datasets.sample('coffee') and read its .shape.")
def _nb00_ex1(answer):
    shape = as_shape(answer)
    if shape == (400, 600, 3):
        return ok("400 rows, 600 columns, 3 colour channels (RGB).")
    if shape == (600, 400, 3):
        return hint("Close: NumPy puts the rows (the height) first, then the columns (the width).")
    if shape is not None and len(shape) == 2:
        return hint("coffee is a colour image: the shape has a third axis for the channels.")
    return hint("Not quite. Print datasets.sample('coffee').shape and copy the tuple.")


@exercise("00", 2, "the shape of a grey-scale load", "Load chelsea with io.load_image(..., mode='gray').")
def _nb00_ex2(answer):
    shape = as_shape(answer)
    if shape == (300, 451):
        return ok("mode='gray' keeps height and width and drops the channel axis.")
    if shape is not None and len(shape) == 3:
        return hint("mode='gray' gives one value per pixel: there is no channel axis any more.")
    if shape == (451, 300):
        return hint("Rows (the height) come first in NumPy.")
    return hint("Not quite. chelsea in colour is (300, 451, 3); what is left without the colours?")


@exercise("00", 3, "the error for a broken file", "Try io.load_image on a file that is not an image and catch it.")
def _nb00_ex3(answer):
    from .. import io

    name = answer.__name__ if isinstance(answer, type) else str(answer).strip().split(".")[-1]
    if answer is io.ImageLoadError or name == "ImageLoadError":
        return ok("io.ImageLoadError names the file and the reason; catch it to skip bad files.")
    if name in {"ValueError", "OSError", "Exception", "IOError", "UnidentifiedImageError"}:
        return hint("cnnwidgets raises its own, more specific error class: look in cnnwidgets.io.")
    return hint("Run io.load_image on a broken file inside try/except Exception as err and print type(err).")


@exercise("00", 4, "the classes of the shapes set", "datasets.shapes(16, seed=0).classes lists them.")
def _nb00_ex4(answer):
    value = as_number(answer)
    if value == 4:
        return ok("Four classes: circles, squares, triangles and crosses.")
    if value is not None and value > 4:
        return hint("That counts images, not classes: look at .classes, not .labels.")
    return hint("Count the entries of datasets.shapes(16, seed=0).classes.")


# ---------------------------------------------------------------- 01 image enhancement


def _camera_psnr(cutoff: float) -> float:
    from ..engine import enhance

    camera, noisy = noisy_camera()
    return float(enhance.psnr(camera, enhance.frequency_filter(noisy, cutoff=cutoff, order=2)))


@exercise("01", 1, "a cutoff that reaches 25 dB", "Try cutoffs between 0.02 and 0.5 and print the PSNR of each.")
def _nb01_ex1(answer):
    cutoff = as_number(answer)
    if cutoff is None or not 0 < cutoff <= 0.5:
        return hint("The cutoff is a fraction of the sampling frequency: a number between 0 and 0.5, such as 0.3.")
    score = _camera_psnr(cutoff)
    if score >= 25:
        return ok(f"cutoff {cutoff:g} gives {score:.2f} dB.")
    if cutoff < 0.2:
        return hint(f"{score:.2f} dB: the result is too blurred. Raise the cutoff to keep more detail.")
    return hint(f"{score:.2f} dB: too much noise passes. Lower the cutoff.")


@exercise("01", 2, "the low-pass that rings", "Compare the overshoot next to the edge for each shape.")
def _nb01_ex2(answer):
    word = as_word(answer)
    if word == "ideal":
        return ok("The ideal mask's sharp edge in frequency is a sinc in space: ripples (Gibbs ringing) at edges.")
    if word == "butterworth":
        return hint("Butterworth of low order rings only a little. Which mask jumps from 1 to 0 at the cutoff?")
    if word in {"gaussian", "exponential"}:
        return hint("The transform of a Gaussian is a Gaussian: it has no ripples. Which mask has a sharp edge?")
    return hint("Answer with a shape name: 'ideal', 'butterworth' or 'gaussian'.")


@exercise("01", 3, "the filter for salt-and-pepper noise", "Look at what each filter does to an isolated white pixel.")
def _nb01_ex3(answer):
    word = as_word(answer)
    if "median" in word:
        return ok("A median ignores the rare extreme values in its window, so impulses vanish and edges stay sharp.")
    if word in {"gaussian", "butterworth", "ideal", "low pass", "lowpass", "mean", "average", "box"}:
        return hint(
            "A linear filter spreads each impulse over its neighbours instead of removing it. Try a rank filter."
        )
    return hint("Answer with a filter name, such as 'median' or 'gaussian'.")


@exercise("01", 4, "the mean of a high-pass result", "Compute frequency_filter(camera, highpass=True, ...).mean().")
def _nb01_ex4(answer):
    value = as_number(answer)
    if value is not None and abs(value) < 1e-3:
        return ok("A high-pass mask is 0 at the centre of the spectrum, the DC term, which is the mean.")
    if value is not None and abs(value - 129.06) < 1:
        return hint("That is the mean of camera itself. What does a high-pass mask do to the zero frequency?")
    return hint("The centre of the spectrum (zero frequency) holds the mean. What value has a high-pass mask there?")


# ---------------------------------------------------------------- 02 segmentation


@exercise("02", 1, "count the coins", "Fill the holes of the coin region, label it, keep objects above 300 pixels.")
def _nb02_ex1(answer):
    value = as_number(answer)
    if value == 24:
        return ok("24 coins.")
    if value is not None and value > 24:
        return hint("Small specks count as objects too: keep only those larger than 300 pixels.")
    if value is not None and value < 24:
        return hint(
            "Coins are missing: fill the holes before labelling, and use the watershed so touching coins split."
        )
    return hint("Answer with the number of coins, an integer.")


@exercise("02", 2, "the threshold for an unevenly lit page", "Compare a global and a local method on the shadow.")
def _nb02_ex2(answer):
    from ..engine import segment

    word = as_word(answer)
    if word in {"sauvola", "niblack", "local", "adaptive", "local sauvola", "local niblack"}:
        return ok("A local threshold follows the lighting, so the shadowed corner keeps only the text.")
    if word in {"mean", "gaussian", "median"}:
        return hint("Ambiguous: 'mean' is both a global and a local method. Name a local one built for text.")
    if word in segment.GLOBAL_METHODS or word == "fixed":
        return hint("One threshold for the whole page turns the shadow to ink. Which methods use a window?")
    return hint(f"Answer with a method name, such as one of {segment.LOCAL_METHODS}.")


@exercise("02", 3, "the Otsu threshold of coins", "segment.threshold_value(coins, 'otsu').")
def _nb02_ex3(answer):
    value = as_number(answer)
    if value is not None and abs(value - 107) <= 1:
        return ok("Otsu: 107, where the between-class variance of the histogram is largest.")
    if value is not None and abs(value - 94.6) <= 1:
        return hint("That is Li's threshold. Otsu maximises the variance between the two classes.")
    if value is not None and 0 < value < 1:
        return hint("coins is uint8: its thresholds are on the 0–255 scale.")
    return hint("Compute segment.threshold_value(coins, 'otsu').")


@exercise("02", 4, "the edge detector with thin, linked edges", "Which detector thins and uses two thresholds?")
def _nb02_ex4(answer):
    word = as_word(answer)
    if word == "canny":
        return ok("Canny: non-maximum suppression thins the edges, hysteresis links them.")
    if word in {"sobel", "prewitt", "scharr", "roberts"}:
        return hint("A gradient magnitude gives thick edges. Which method suppresses non-maxima?")
    if word in {"laplace", "log", "laplacian"}:
        return hint("Zero crossings give closed but noisy contours. Which method uses hysteresis?")
    return hint("Answer with a method name from segment.EDGE_METHODS.")


# ---------------------------------------------------------------- 03 CNN basics


@exercise("03", 1, "a convolution's output size", "size = floor((n + 2·padding − kernel) / stride) + 1")
def _nb03_ex1(answer):
    value = as_number(answer)
    if value == 15:
        return ok("(32 + 2·1 − 5) // 2 + 1 = 15.")
    if value == 14:
        return hint("That forgets the padding: it adds 1 pixel on each side, 2 in all.")
    if value == 30:
        return hint("That forgets the stride: with stride 2 the kernel moves 2 pixels at a time.")
    if value == 28:
        return hint("That forgets both padding and stride.")
    if value == 16:
        return hint("Round down, and subtract the kernel size before dividing by the stride.")
    return hint("Use floor((n + 2·padding − kernel) / stride) + 1 with n=32, kernel=5, stride=2, padding=1.")


@exercise("03", 2, "the parameters of a convolution", "weights: out × in × k × k, plus one bias per output.")
def _nb03_ex2(answer):
    value = as_number(answer)
    if value == 448:
        return ok("16 × 3 × 3 × 3 = 432 weights + 16 biases = 448.")
    if value == 432:
        return hint("Each output channel also has a bias.")
    if value in {144, 160}:
        return hint("Each kernel spans all 3 input channels.")
    return hint("Count the weights of 16 kernels of 3 × 3 × 3, then add the biases.")


@exercise("03", 3, "why max pooling is not invertible", "Write down two different windows with the same maximum.")
def _nb03_ex3(answer):
    letter = as_choice(answer)
    if letter == "b":
        return ok("Many inputs give the same output: the three smaller values of each 2×2 window are discarded.")
    hints = {
        "a": "ReLU is non-linear too, yet on positive values it is the identity. What is lost in a window?",
        "c": "Max pooling keeps the number of channels; it works on each channel alone.",
        "d": "A stride alone loses nothing if nothing is thrown away. What happens to the other values?",
    }
    return hint(hints.get(letter, "Answer with one letter: 'a', 'b', 'c' or 'd'."))


@exercise("03", 4, "the layer whose maps respond to edges", "Compare the maps of the first and the deepest layer.")
def _nb03_ex4(answer):
    word = str(answer).strip()
    if word == "conv_stem":
        return ok("The first convolution sees only a few pixels: its kernels are edge and colour detectors.")
    if word.startswith("blocks") or word.startswith("bn2") or word.startswith("conv_head"):
        return hint("Deep layers see large areas and respond to parts and objects. Edges come first.")
    return hint("Answer with a layer name shown above, e.g. 'blocks.3.0.conv_pw'.")


# ---------------------------------------------------------------- 04 CNN classification


@exercise("04", 1, "the chance accuracy on digits", "How many classes are there, all about equally common?")
def _nb04_ex1(answer):
    value = as_number(answer)
    if value is not None and abs(value - 0.1) < 0.005:
        return ok("Ten classes: guessing is right one time in ten.")
    if value is not None and abs(value - 10) < 0.5:
        return hint("Give the accuracy as a fraction between 0 and 1, as train.evaluate_classifier does.")
    if value is not None and abs(value - 0.5) < 0.01:
        return hint("There are more than two classes.")
    return hint("Accuracy by chance is 1 / (number of classes).")


@exercise("04", 2, "the support set of the few-shot classifier", "5 examples for each class of the shapes set.")
def _nb04_ex2(answer):
    value = as_number(answer)
    if value == 20:
        return ok("4 classes × 5 examples = 20 labelled images.")
    if value == 5:
        return hint("5 examples per class, and there are several classes.")
    if value in {75, 80}:
        return hint("That is the whole set or the queries; the support set holds only the labelled examples.")
    return hint("Multiply the number of classes by 5.")


@exercise("04", 3, "the better features for shapes", "Compare the accuracies in the table compare_features printed.")
def _nb04_ex3(answer):
    word = as_word(answer)
    if word in {"cnn", "cnn features", "deep"}:
        return ok("The CNN's features describe whole shapes; SIFT keypoints on flat shapes are few and alike.")
    if word in {"bovw", "sift", "bag of visual words", "bag of words"}:
        return hint("Look again at the two accuracies: which row is higher?")
    return hint("Answer 'cnn' or 'bovw'.")


@exercise("04", 4, "the first layer of efficientnet_lite0", "viz.controls['layer'] lists the layers in order.")
def _nb04_ex4(answer):
    word = str(answer).strip()
    if word == "conv_stem":
        return ok("conv_stem: a stride-2 3×3 convolution, the layer whose maps respond to edges.")
    if word in {"bn1", "bn1.act"}:
        return hint("That follows the first convolution; name the convolution itself.")
    return hint("Open the layer dropdown of the LayerVisualizer: the first entry.")


# ---------------------------------------------------------------- 05 image retrieval


@exercise("05", 1, "a text query for a class without captions", "The predicted labels are stored as tags.")
def _nb05_ex1(answer, *, index=None, folder="coffee"):
    if not isinstance(answer, str) or not answer.strip():
        return hint("Answer with a query string.")
    if folder in answer.lower():
        return hint(f"'{folder}' is in the file names, so keywords find it. Use a word only the labels know.")
    if index is None:
        return hint("Pass the index too: check.ex1(answer, index=index).")
    hits = index.search(text=answer, k=5)
    inside = [f"/{folder}/" in h.path.replace("\\", "/") for h in hits]
    if hits and all(inside):
        return ok(f"All 5 hits for {answer!r} are {folder} images, found through their predicted labels.")
    tags = {t for h in index.search(text=folder, k=3) for t, _ in h.tags[:3]}
    return hint(f"{sum(inside)} of 5 hits are {folder} images. Its images carry labels such as {sorted(tags)}.")


@exercise("05", 2, "precision@10 by hand", "Relevant hits among the first 10, divided by 10.")
def _nb05_ex2(answer):
    value = as_number(answer)
    if value is not None and abs(value - 0.7) < 1e-6:
        return ok("7 of the first 10 hits are relevant: P@10 = 0.7.")
    if value == 7:
        return hint("Divide by 10: precision is a fraction.")
    if value is not None and abs(value - 0.3) < 1e-6:
        return hint("That is the share of wrong hits.")
    return hint("Count the R in R R N R R N N R R R and divide by 10.")


@exercise("05", 3, "average precision by hand", "Average the precision at each relevant hit over all relevant items.")
def _nb05_ex3(answer):
    value = as_number(answer)
    if value is not None and abs(value - 5 / 6) < 1e-3:
        return ok("(1/1 + 2/3) / 2 = 0.833.")
    if value is not None and abs(value - 2 / 3) < 1e-3:
        return hint("That is the precision at rank 3 only. Average it with the precision at the first hit.")
    if value is not None and abs(value - 5 / 9) < 1e-3:
        return hint("Divide by the number of relevant items (2), not by the number of ranks.")
    return hint("Ranks: R N R, 2 relevant items. Precision is 1/1 at rank 1 and 2/3 at rank 3.")


@exercise("05", 4, "the descriptor that fails on colour changes", "Compare the per-distortion table above.")
def _nb05_ex4(answer):
    word = as_word(answer)
    if word in {"color", "colour", "color histogram", "colour histogram"}:
        return ok("A colour histogram changes with the colours; SIFT and the CNN look at structure.")
    if word in {"cnn", "sift", "moments"}:
        return hint("That one keeps a high precision on the colour-changed versions. Which one drops?")
    return hint("Answer with a descriptor name: 'cnn', 'color', 'moments' or 'sift'.")


# ---------------------------------------------------------------- 06 pipeline


@exercise("06", 1, "the regions of the default pipeline", "len(chain.run(coins)['regions']).")
def _nb06_ex1(answer):
    value = as_number(answer)
    if value == 24:
        return ok("24 regions, one per coin.")
    return hint("Run the default pipeline on coins and count the regions it returns.")


@exercise("06", 2, "what the low-pass does to false regions", "Compare the counts with and without enhancement.")
def _nb06_ex2(answer):
    word = as_word(answer)
    if word in {"fewer", "less", "lower", "decreases", "fewer regions"}:
        return ok("Smoothing removes the noise specks before the threshold, so fewer false regions are found.")
    if word in {"more", "higher", "increases", "more regions"}:
        return hint("Look at the printed counts again: which is larger, with or without the filter?")
    return hint("Answer 'fewer' or 'more'.")


@exercise("06", 3, "a cutoff that is too low", "Try cutoff 0.02 and look at the regions.")
def _nb06_ex3(answer):
    letter = as_choice(answer)
    if letter == "a":
        return ok("A low cutoff blurs the gaps between coins away, so neighbours merge into one region.")
    hints = {
        "b": "Noise is removed by a low cutoff, not added. What happens to the dark gaps between coins?",
        "c": "The image keeps its size; only its detail changes.",
    }
    return hint(hints.get(letter, "Answer with one letter: 'a', 'b' or 'c'."))
