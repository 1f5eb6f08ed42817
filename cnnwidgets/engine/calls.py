"""Engine calls as data: what a widget computes, applied to any image and rendered as the code that does it.

A :class:`Call` is a frozen record of one engine function and its arguments. A :class:`Recipe` is a short
program of named steps, each a call whose arguments may name earlier steps (:class:`Ref`), so noise → filter
or response → edge mask is one object. The same recipe is

- applied to a display-size preview (:meth:`Recipe.rescaled` turns pixel lengths into preview pixels),
- applied to the full-resolution image,
- rendered as Python source (:meth:`Recipe.code`),

so what runs and what is shown as code cannot disagree. A :class:`Computed` argument is a value that was
computed once from the full image (a histogram threshold, say): applying the recipe reuses the value,
the code shows the call that computes it.

Examples
--------
>>> from cnnwidgets.engine import enhance
>>> recipe = Recipe.of(Call(enhance.median, size=5))
>>> print(recipe.code())
from cnnwidgets.engine import enhance
result = enhance.median(image, size=5)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Ref",
    "Literal",
    "Computed",
    "Call",
    "Step",
    "Recipe",
    "RecipeCache",
    "StepError",
    "IMAGE",
    "NO_DATA",
    "pixel_lengths",
]

#: Name of the recipe's input.
IMAGE = "image"


class StepError(Exception):
    """A step of a :class:`Recipe` failed.

    Attributes
    ----------
    step : str
        The step's name.
    outputs : dict
        The outputs of the steps before it (and the inputs), so a caller can keep showing them.
    error : Exception
        What the step raised.
    """

    def __init__(self, step: str, outputs: dict, error: Exception):
        super().__init__(f"{step}: {type(error).__name__}: {error}")
        self.step, self.outputs, self.error = step, dict(outputs), error


@dataclass(frozen=True)
class Ref:
    """An argument that is the output of an earlier step (or the input, ``Ref("image")``).

    ``Ref("conv.output")`` is the attribute ``output`` of the step ``conv``.
    """

    name: str

    @property
    def step(self) -> str:
        """The step (or input) the reference reads."""
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class Literal:
    """A value written into the code as it is: the data argument of a call whose data is a string, such as a
    model name (a plain string as ``data`` names a step)."""

    value: Any


class _NoData:
    """The data argument of a call that has none (``datasets.digits()``)."""

    def __repr__(self) -> str:
        return "NO_DATA"


NO_DATA = _NoData()


@dataclass(frozen=True, eq=False)
class Computed:
    """A value computed once by ``call`` from the full image; applying reuses ``value``, code shows ``call``.

    It may be an argument of a call, or a step of its own (``threshold = segment.threshold_value(image, 'otsu')``,
    the value of the full image while the preview runs): as a step it answers what a :class:`Call` answers.
    """

    value: Any
    call: Call

    data = NO_DATA  # the step reads nothing when it runs: its value is known

    @property
    def fn(self) -> Callable:
        return self.call.fn

    def __call__(self, env: Mapping[str, Any]):
        return self.value

    def refs(self) -> list[Ref]:
        """The call's references: they key the value in a cache (the value belongs to their inputs)."""
        return self.call.refs()

    def expression(self) -> str:
        return self.call.expression()

    def modules(self) -> set[tuple[str, str]]:
        return self.call.modules()

    def with_kwargs(self, **changes) -> Computed:
        return self

    def rescaled(self, factor: float, shape: tuple) -> Computed:
        return self


def _odd_length(value, factor, shape):
    n = max(3, int(round(value * factor)))
    return n if n % 2 else n + 1


def _length(value, factor, shape):
    return value * factor


def _points(value, factor, shape):
    """(row, col) points of the full image → pixels of the scaled image of ``shape`` (H, W, ...)."""
    if not isinstance(value, (list, tuple)):
        return value  # None, or a label image
    return [(min(shape[0] - 1, int(r * factor)), min(shape[1] - 1, int(c * factor))) for r, c in value]


#: How a pixel-length argument changes when a recipe runs on an image scaled by ``factor``:
#: ``rule(value, factor, scaled_shape)``, by the kind an engine function declares with :func:`pixel_lengths`.
PIXEL_RULES: dict[str, Callable[[Any, float, tuple], Any]] = {
    "odd": _odd_length,  # a window side in pixels, kept odd and at least 3
    "length": _length,  # a length in pixels (a Gaussian's sigma)
    "points": _points,  # (row, col) points
}


def pixel_lengths(**kinds: str) -> Callable[[Callable], Callable]:
    """Declare which keyword arguments of an engine function are measured in pixels of its image.

    ``@pixel_lengths(window="odd", sigma="length")`` stores ``{keyword: kind}`` (kinds: the keys of
    :data:`PIXEL_RULES`) as the function's ``pixel_lengths`` attribute; :meth:`Call.rescaled` scales those
    arguments when a recipe runs on a preview. The function itself is returned unchanged.
    """
    unknown = sorted(set(kinds.values()) - set(PIXEL_RULES))
    if unknown:
        raise ValueError(f"pixel_lengths: unknown kind {unknown[0]!r}; choose from {sorted(PIXEL_RULES)}")

    def declare(fn: Callable) -> Callable:
        fn.pixel_lengths = dict(kinds)
        return fn

    return declare


def _literal(value) -> str:
    """Source text of an argument value; floats keep every digit so the code reproduces the result."""
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, Literal):
        return _literal(value.value)
    if isinstance(value, Computed):
        return value.call.expression()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _resolve(value, env: Mapping[str, Any]):
    if isinstance(value, Ref):
        head, *attrs = value.name.split(".")
        out = env[head]
        for a in attrs:
            out = getattr(out, a)
        return out
    if isinstance(value, (Computed, Literal)):
        return value.value
    return value


@dataclass(frozen=True)
class Call:
    """One engine function with its arguments; the first argument is the data (``image`` by default).

    Parameters
    ----------
    fn : callable
        A public function of a ``cnnwidgets.engine`` module.
    *args
        Positional arguments after the data: values, :class:`Ref` or :class:`Computed`.
    data : Ref or str or Literal or value, optional
        The data argument: a reference (a string names a step or the input; default ``"image"``), a value
        written into the code as it is (a small matrix typed by the user; a string in a :class:`Literal`), or
        :data:`NO_DATA` for a function called without one.
    **kwargs
        Keyword arguments (values, :class:`Ref` or :class:`Computed`).
    """

    fn: Callable
    args: tuple = ()
    kwargs: tuple = ()  # (name, value) pairs, in the order given
    data: Any = Ref(IMAGE)

    def __init__(self, fn: Callable, *args, data: Any = IMAGE, **kwargs):
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "args", tuple(args))
        object.__setattr__(self, "kwargs", tuple(kwargs.items()))
        object.__setattr__(self, "data", Ref(data) if isinstance(data, str) else data)

    @property
    def is_method(self) -> bool:
        """True for a method of a class (``ImageIndex.search``): the data is the object, written ``data.fn(...)``."""
        return "." in self.fn.__qualname__ and "<locals>" not in self.fn.__qualname__

    @property
    def module(self) -> str:
        """The short module name the code imports, e.g. ``"enhance"``."""
        return self.fn.__module__.rsplit(".", 1)[-1]

    @property
    def package(self) -> str:
        return self.fn.__module__.rsplit(".", 1)[0]

    def keywords(self) -> dict:
        return dict(self.kwargs)

    def with_data(self, data) -> Call:
        """A copy reading another data argument (a step name, :class:`Ref` or value)."""
        return Call(self.fn, *self.args, data=data, **self.keywords())

    def with_kwargs(self, **changes) -> Call:
        """A copy with some keyword arguments replaced."""
        kw = self.keywords()
        kw.update(changes)
        return Call(self.fn, *self.args, data=self.data, **kw)

    def rescaled(self, factor: float, shape: tuple) -> Call:
        """A copy for an image scaled by ``factor`` to ``shape``: the keywords the function declares as pixel
        lengths (:func:`pixel_lengths`) follow the scale."""
        kinds = getattr(self.fn, "pixel_lengths", {})
        if factor == 1 or not kinds:
            return self
        kw = {k: (PIXEL_RULES[kinds[k]](v, factor, shape) if k in kinds else v) for k, v in self.kwargs}
        return Call(self.fn, *self.args, data=self.data, **kw)

    def __call__(self, env: Mapping[str, Any]):
        """Run the call, taking its data and references from ``env`` (a name → value mapping)."""
        args = [_resolve(a, env) for a in self.args]
        kwargs = {k: _resolve(v, env) for k, v in self.kwargs}
        if self.data is NO_DATA:
            return self.fn(*args, **kwargs)
        return self.fn(_resolve(self.data, env), *args, **kwargs)

    def apply(self, image):
        """Run the call on ``image`` (a call without references to other steps)."""
        env = {IMAGE: image}
        if isinstance(self.data, Ref):
            env[self.data.step] = image
        return self(env)

    def refs(self) -> list[Ref]:
        """The references among the data and the arguments."""
        values = [self.data, *self.args, *(v for _, v in self.kwargs)]
        return [v for v in values if isinstance(v, Ref)]

    def expression(self) -> str:
        """The call as a Python expression, e.g. ``enhance.median(image, size=5)``."""
        parts = [_literal(a) for a in self.args] + [f"{k}={_literal(v)}" for k, v in self.kwargs]
        if self.is_method:
            return f"{_literal(self.data)}.{self.fn.__name__}({', '.join(parts)})"
        if self.data is not NO_DATA:
            parts.insert(0, _literal(self.data))
        return f"{self.module}.{self.fn.__name__}({', '.join(parts)})"

    def modules(self) -> set[tuple[str, str]]:
        """(package, module) pairs the expression needs, nested :class:`Computed` calls included."""
        out = set() if self.is_method else {(self.package, self.module)}
        for v in list(self.args) + [v for _, v in self.kwargs]:
            if isinstance(v, Computed):
                out |= v.call.modules()
        return out


@dataclass(frozen=True)
class Step:
    """``name = call``: one line of a :class:`Recipe` (``call`` may be a :class:`Computed` value)."""

    name: str
    call: Call | Computed


@dataclass(frozen=True)
class Recipe:
    """Named steps run in order; the result is the step named ``result``, else the last one.

    Parameters
    ----------
    steps : tuple of Step
        Each step's call may refer to the input (``image``) and to earlier steps by name.
    """

    steps: tuple[Step, ...]

    @classmethod
    def of(cls, *calls: Call | Step) -> Recipe:
        """A recipe of the given calls; unnamed calls are chained (each takes the previous output),
        and the last is named ``result``."""
        steps = []
        prev = IMAGE
        for i, c in enumerate(calls):
            last = i == len(calls) - 1
            if isinstance(c, Step):
                steps.append(c)
                prev = c.name
                continue
            name = "result" if last else f"step{i + 1}"
            if isinstance(c.data, Ref) and c.data.name == IMAGE and prev != IMAGE:
                c = c.with_data(Ref(prev))
            steps.append(Step(name, c))
            prev = name
        return cls(tuple(steps))

    @property
    def output(self) -> str:
        """The name of the result's step: ``"result"`` when a step has that name (later steps are pictures drawn
        from it), else the last step."""
        names = [s.name for s in self.steps]
        return "result" if "result" in names else names[-1]

    def upto(self, name: str) -> Recipe:
        """The steps ``name`` depends on, and ``name`` itself, in order (the result without the pictures drawn
        from it, e.g. for a full-resolution run)."""
        if name not in {s.name for s in self.steps}:
            raise KeyError(f"no step {name!r}; steps: {[s.name for s in self.steps]}")
        needed = {name}
        for s in reversed(self.steps):
            if s.name in needed:
                needed.update(r.step for r in s.call.refs())
        return Recipe(tuple(s for s in self.steps if s.name in needed))

    def reading(self, source: str, output: str) -> Recipe:
        """The same steps reading the variable ``source`` instead of ``image``, the result's step (:attr:`output`)
        named ``output`` and the steps after it left out (to splice a widget's recipe into a longer chain)."""

        def swap(v):
            if isinstance(v, Ref) and v.step == IMAGE:
                return Ref(source + v.name[len(IMAGE) :])
            if isinstance(v, Computed):
                c = v.call
                inner = Call(c.fn, *map(swap, c.args), data=swap(c.data), **{k: swap(x) for k, x in c.kwargs})
                return Computed(v.value, inner)
            return v

        steps = []
        for s in self.steps:
            c = s.call
            if isinstance(c, Computed):
                call = swap(c)
            else:
                call = Call(c.fn, *map(swap, c.args), data=swap(c.data), **{k: swap(v) for k, v in c.kwargs})
            if s.name == self.output:
                steps.append(Step(output, call))
                break
            steps.append(Step(s.name, call))
        return Recipe(tuple(steps))

    def rescaled(self, factor: float, shape: tuple) -> Recipe:
        """The recipe for an image scaled by ``factor`` to ``shape`` (see :meth:`Call.rescaled`)."""
        if factor == 1:
            return self
        return Recipe(tuple(Step(s.name, s.call.rescaled(factor, shape)) for s in self.steps))

    def run(
        self,
        image,
        *,
        inputs: Mapping | None = None,
        input_keys: Mapping | None = None,
        cache: dict | None = None,
        reuse: Mapping | None = None,
        hooks: Mapping | None = None,
    ) -> dict:
        """Run every step on ``image``; returns ``{name: output}`` with ``image`` and every step.

        Parameters
        ----------
        image : object
            The recipe's input.
        inputs : dict, optional
            Other named inputs the steps refer to (an ``index`` whose method a step calls).
        input_keys : dict, optional
            Cache keys of the inputs (default: their names, for a cache kept per image): a digest of the
            pixels lets one cache serve several images.
        cache : dict or RecipeCache, optional
            Outputs of earlier runs on the same image, keyed by the source of a step and of the steps it
            depends on; a step whose key is present is not recomputed (a widget keeps one per image).
        reuse : dict, optional
            ``{function: prepare}`` for functions that also accept a precomputed form of their data and give
            the same result (``enhance.frequency_filter`` takes ``enhance.fourier(image)``): the form is made
            once per input and kept in ``cache``, so repeated calls skip that work.
        hooks : dict, optional
            ``{function: {keyword: value}}``: keyword arguments added to the calls of these functions when they
            run, and not part of their code or cache key (a callback per epoch, a stop event, progress off).
        """
        env = {IMAGE: image, **(inputs or {})}
        keys = {name: name for name in env}
        keys.update(input_keys or {})
        for step in self.steps:
            call = step.call
            key = (call.expression(), step.name, tuple(keys[r.step] for r in call.refs()))
            if cache is not None and key in cache:
                out = cache[key]
            else:
                local = env
                prepare = (reuse or {}).get(call.fn)
                if (
                    prepare is not None
                    and cache is not None
                    and isinstance(call.data, Ref)
                    and "." not in call.data.name
                ):
                    form_key = ("reuse", prepare.__name__, keys[call.data.name])
                    if form_key not in cache:
                        cache[form_key] = prepare(env[call.data.name])
                    local = {**env, call.data.name: cache[form_key]}
                if hooks and call.fn in hooks:
                    call = call.with_kwargs(**hooks[call.fn])
                try:
                    out = call(local)
                except Exception as exc:
                    raise StepError(step.name, env, exc) from exc
                if cache is not None:
                    cache[key] = out
            env[step.name] = out
            keys[step.name] = key
        return env

    def __call__(
        self, image, *, inputs: Mapping | None = None, cache: dict | None = None, reuse: Mapping | None = None
    ):
        """The result of the recipe on ``image`` (arguments as :meth:`run`)."""
        return self.run(image, inputs=inputs, cache=cache, reuse=reuse)[self.output]

    def code(self, *, result: bool = True, given: Mapping[str, str] | None = None) -> str:
        """Python source that computes ``result`` from a variable ``image``, with its imports.

        With ``result=False`` the last line is the last step (no ``result = ...`` alias). A recipe of one
        method call (``index.search(...)``) renders as that expression alone. ``given`` describes inputs other
        than ``image`` that the code reads (``{"dataset": "the labelled set given to the dashboard"}``): one
        comment line each, after the imports."""
        if len(self.steps) == 1 and self.steps[0].call.is_method and not self.steps[0].call.modules():
            return self.steps[0].call.expression()
        mods = set()
        for s in self.steps:
            mods |= s.call.modules()
        by_package: dict[str, list[str]] = {}
        for pkg, mod in sorted(mods):
            by_package.setdefault(pkg, []).append(mod)
        lines = [f"from {pkg} import {', '.join(ms)}" for pkg, ms in by_package.items()]
        lines += [f"# {name}: {what}" for name, what in (given or {}).items()]
        for s in self.steps:
            lines.append(f"{s.name} = {s.call.expression()}")
        if result and self.output != "result":  # no step is named result
            lines.append(f"result = {self.output}")
        return "\n".join(lines)


class RecipeCache:
    """Step outputs of recent :meth:`Recipe.run` calls on one image, the ``maxsize`` most recently used.

    A widget keeps one per image: moving a slider back and forth recomputes nothing it has just shown, and
    the steps before the one that changed (the noise before a filter) are computed once.
    """

    def __init__(self, maxsize: int = 8):
        self.maxsize = maxsize
        self._items: OrderedDict = OrderedDict()

    def __contains__(self, key) -> bool:
        return key in self._items

    def __getitem__(self, key):
        self._items.move_to_end(key)
        return self._items[key]

    def __setitem__(self, key, value):
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
