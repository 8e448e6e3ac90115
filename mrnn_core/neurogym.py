"""Task data from neurogym (an optional extra): trials as ``[B, T, .]`` arrays, ``dt`` as ``alpha``.

neurogym turns cognitive tasks into supervised data: ``ngym.Dataset(env,
batch_size=B, seq_len=T)`` returns, at each call, ``(inputs, targets)``
time-major (``[T, B, I]``, and ``[T, B]`` class labels for a discrete action
space or ``[T, B, O]`` for a continuous one). Its environments step by
``env.dt`` milliseconds; a leaky mRNN steps by ``alpha = dt / tau``, so a
model matches the task when its ``dt`` is the task's::

    from mrnn_core import neurogym as task_data

    data = task_data.make_dataset("PerceptualDecisionMaking-v0", batch_size=16, seq_len=100, dt=20)
    n_in, n_out = task_data.task_sizes(data)
    dynamics = task_data.task_dynamics(data, tau=100)      # alpha = 20 / 100
    inputs, labels = task_data.next_batch(data)            # [16, 100, n_in], [16, 100]

Only :func:`make_dataset` imports neurogym; the others read any object with
neurogym's interface. To train with ``mrnn_torch.train`` / ``mrnn_jax.train``
(or name a task in a sweep), use ``mrnn_core.tasks.make_task("neurogym:<id>")``,
whose batches depend on the seed alone.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from .dynamics import Dynamics
from .errors import MRNNConfigError
from .tasks import DEFAULT_DTYPE, task_dtype

INSTALL_HINT = "pip install neurogym"


def require_neurogym():
    """The ``neurogym`` module, or a ``ModuleNotFoundError`` saying how to install it."""
    try:
        import neurogym
    except ImportError as err:
        raise ModuleNotFoundError(
            f"mrnn_core.neurogym.make_dataset needs the optional package 'neurogym', which is "
            f"not installed ({err}); install it with `{INSTALL_HINT}`", name="neurogym") from err
    return neurogym


@contextlib.contextmanager
def quiet_gymnasium():
    """Silence two gymnasium warnings that neurogym 2.3 triggers on every use and
    a user cannot act on: its env metadata lacks ``render_modes`` (rendering
    only), and ``Dataset`` reaches ``env.seed`` and ``env.new_trial`` through
    wrappers."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*render_modes", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*env\.\w+ to get variables from other wrappers",
                                category=UserWarning)
        yield


def make_dataset(task, batch_size: int, seq_len: int, *, dt: float | None = None,
                 env_kwargs: dict | None = None, seed: int | None = None):
    """``neurogym.Dataset`` of ``task``, time-major as neurogym makes it.

    **Arguments:**

    - `task`: a neurogym task id (``"PerceptualDecisionMaking-v0"``) or an env.
    - `batch_size`, `seq_len`: ``B`` trials of ``T`` steps per batch.
    - `dt`: the task's step in ms (an env keyword; only with a task id).
    - `env_kwargs`: other keywords of the env (only with a task id).
    - `seed`: seeds the ``B`` envs (``seed``, ``seed + 1``, ...).

    **Returns:** the dataset; :func:`next_batch` turns each call into our layout.
    """
    ngym = require_neurogym()
    kwargs = dict(env_kwargs or {})
    if dt is not None:
        kwargs["dt"] = dt
    if kwargs and not isinstance(task, str):
        raise MRNNConfigError(
            f"dt, env_kwargs: apply only when task is a task id (a str), got a "
            f"{type(task).__name__}; set {', '.join(sorted(kwargs))} on the env itself")
    with quiet_gymnasium():
        dataset = ngym.Dataset(task, env_kwargs=kwargs or None, batch_size=batch_size,
                               seq_len=seq_len)
        if seed is not None:
            dataset.seed(seed)
            # neurogym fills its first cache of trials while constructing the
            # Dataset, before any seed: refill it, so the first batches follow
            # the seed too.
            if callable(getattr(dataset, "_cache", None)):
                dataset._cache()
    return dataset


def _env(source):
    """The (unwrapped) env of a dataset, or ``source`` itself when it is an env."""
    env = getattr(source, "env", source)
    return getattr(env, "unwrapped", env)


def task_dt(source) -> float:
    """The task's step ``dt`` in ms, read from a dataset's env or from an env."""
    dt = getattr(_env(source), "dt", None)
    if dt is None:
        raise MRNNConfigError(
            f"expected a neurogym Dataset or env with a dt (ms), got a {type(source).__name__} "
            f"without one")
    return float(dt)


def task_sizes(source) -> tuple[int, int]:
    """``(I, O)``: input channels, and outputs (classes of a discrete action space)."""
    env = _env(source)
    n_in = int(np.prod(env.observation_space.shape))
    space = env.action_space
    n_out = int(space.n) if hasattr(space, "n") else int(np.prod(space.shape))
    return n_in, n_out


def task_dynamics(source, tau: float, **settings) -> Dynamics:
    """Leaky :class:`Dynamics` stepping with the task's ``dt``: ``alpha = dt / tau``.

    **Arguments:**

    - `source`: a neurogym Dataset or env (its ``dt``).
    - `tau`: the units' time constant in ms; at least ``dt`` (``alpha <= 1``:
      a larger Euler step overshoots the leak).
    - `settings`: any other field of :class:`Dynamics` (``activation``, ...).

    Build a model with it in either backend through
    ``Checkpoint.initialise(spec, dynamics, seed)`` and ``from_checkpoint``,
    or pass ``dt=dynamics.dt, tau=dynamics.tau`` to a constructor.
    """
    dt = task_dt(source)
    if isinstance(tau, (int, float)) and not isinstance(tau, bool) and 0 < tau < dt:
        raise MRNNConfigError(
            f"tau: expected at least the task's dt = {dt:g} ms (alpha = dt / tau <= 1), "
            f"got {tau!r}")
    for key in ("kind", "dt", "tau"):
        if key in settings:
            raise MRNNConfigError(
                f"{key}: set by the task (kind='leaky', dt from the env, tau given), "
                f"got {key}={settings[key]!r} in settings")
    return Dynamics(kind="leaky", dt=dt, tau=tau, **settings)


def next_batch(dataset, *, one_hot: bool = False, dtype=DEFAULT_DTYPE):
    """One batch of ``dataset`` in our batch-first layout.

    **Arguments:** `one_hot` turns class labels into one-hot rows; `dtype`
    (``float32`` by default, a model's default; ``"float64"`` for a float64
    model) is that of the inputs and of any real-valued targets.

    **Returns:** ``(inputs, targets)``: ``inputs`` ``[B, T, I]``; ``targets``
    ``[B, T]`` integer labels for a discrete action space (``[B, T, n]``
    one-hot with `one_hot`), or ``[B, T, O]`` for a continuous one.
    """
    dtype = task_dtype(dtype, "next_batch: dtype")
    with quiet_gymnasium():
        inputs, targets = dataset()
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim != 3 or targets.ndim not in (2, 3) or inputs.shape[:2] != targets.shape[:2]:
        raise MRNNConfigError(
            f"dataset(): expected inputs [T, B, I] and targets [T, B] or [T, B, O] (time-major, "
            f"as neurogym.Dataset returns), got shapes {inputs.shape} and {targets.shape}")
    if one_hot and (targets.ndim != 2 or not np.issubdtype(targets.dtype, np.integer)):
        raise MRNNConfigError(
            f"one_hot: needs integer class labels (a discrete action space), got targets "
            f"of shape {targets.shape} and dtype {targets.dtype}")
    if not getattr(dataset, "batch_first", False):
        inputs, targets = inputs.swapaxes(0, 1), targets.swapaxes(0, 1)
    inputs = np.ascontiguousarray(inputs, dtype=dtype)
    if one_hot:
        return inputs, np.eye(task_sizes(dataset)[1], dtype=dtype)[targets]
    if not np.issubdtype(targets.dtype, np.integer):
        targets = targets.astype(dtype)
    return inputs, np.ascontiguousarray(targets)
