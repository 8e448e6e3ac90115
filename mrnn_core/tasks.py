"""Task data for training (numpy, seeded), and tasks as objects a sweep can name.

:func:`flip_flop` draws the classic n-bit flip-flop trials. :func:`make_task`
turns a name and its parameters into a task object whose
``sample(batch_size, rng)`` returns one :class:`Batch`; the training
functions of both backends (``mrnn_torch.train``, ``mrnn_jax.train``) draw
every step's batch that way, from a numpy ``Generator`` they seed per step::

    task = make_task("flip_flop", steps=100, n_bits=3, p_pulse=0.05)
    batch = task.sample(32, np.random.default_rng(0))   # inputs, targets [32, 100, 3]
    task = make_task("neurogym:PerceptualDecisionMaking-v0", seq_len=100, dt=20)
    batch = task.sample(16, np.random.default_rng(0))   # inputs [16, 100, 3], labels [16, 100]

Arrays come in ``float32`` by default (what a model holds by default in
torch and in JAX without x64); pass ``dtype="float64"`` for a float64 model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .errors import MRNNConfigError, closest, known

DEFAULT_DTYPE = "float32"
NEUROGYM_PREFIX = "neurogym:"


def task_dtype(dtype, where: str = "dtype") -> np.dtype:
    """``dtype`` as a numpy floating dtype (float16/32/64), or an error naming it."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not np.issubdtype(resolved, np.floating):
        raise MRNNConfigError(
            f"{where}: expected a real floating dtype such as 'float32' or 'float64', got {dtype!r}")
    return resolved


def flip_flop(batch: int, steps: int, n_bits: int = 3, p_pulse: float = 0.05,
              seed=None, batch_first: bool = True, dtype=DEFAULT_DTYPE):
    """The n-bit flip-flop task (Sussillo & Barak, 2013).

    Each input channel carries rare pulses of +1 or -1; the matching output
    must hold the sign of the channel's most recent pulse (0 before the first).

    **Arguments:**

    - `batch`, `steps`: ``B`` trials of ``T`` steps.
    - `n_bits`: number of independent channels (3 for the classic task).
    - `p_pulse`: probability of a pulse per channel and step.
    - `seed`: numpy seed (or a ``numpy.random.Generator``, which is advanced);
      the same seed gives the same trials.
    - `batch_first`: ``[B, T, n_bits]`` if True, else ``[T, B, n_bits]``.
    - `dtype`: of both arrays, ``float32`` by default (a model's default);
      ``"float64"`` for a float64 model. The values (-1, 0, 1) are exact in any.

    **Returns:** ``(inputs, targets)``, arrays of the same shape.
    """
    for name, value in (("batch", batch), ("steps", steps), ("n_bits", n_bits)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise MRNNConfigError(f"flip_flop: {name} must be an integer >= 1, got {value!r}")
    if not 0.0 <= p_pulse <= 1.0:
        raise MRNNConfigError(f"flip_flop: p_pulse must be in [0, 1], got {p_pulse!r}")
    dtype = task_dtype(dtype, "flip_flop: dtype")
    rng = np.random.default_rng(seed)
    pulse = rng.random((batch, steps, n_bits)) < p_pulse
    sign = rng.choice([-1.0, 1.0], size=(batch, steps, n_bits))
    inputs = np.where(pulse, sign, 0.0)
    targets = np.zeros_like(inputs)
    held = np.zeros((batch, n_bits))
    for t in range(steps):
        held = np.where(pulse[:, t], sign[:, t], held)
        targets[:, t] = held
    if not batch_first:
        inputs, targets = inputs.transpose(1, 0, 2), targets.transpose(1, 0, 2)
    return inputs.astype(dtype), targets.astype(dtype)


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of a task, batch first.

    **Fields:**

    - `inputs` ``[B, T, I]`` (the task's dtype).
    - `targets`: ``[B, T, O]`` values (the task's dtype) for an ``"mse"``
      task, or ``[B, T]`` int64 class labels for a ``"cross_entropy"`` one.
    - `mask`: ``[B, T]`` weights of each step in the loss (the task's
      dtype), or ``None`` when every step counts.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray | None = None


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise MRNNConfigError(
            f"sample: rng: expected a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}")
    return rng


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MRNNConfigError(f"sample: batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)


@dataclass(frozen=True)
class FlipFlopTask:
    """The n-bit flip-flop (:func:`flip_flop`) as a task: ``make_task("flip_flop", ...)``.

    **Fields:** `steps` (``T``, default 100), `n_bits` (3), `p_pulse`
    (0.05), `dtype` (``"float32"``). Loss ``"mse"``: targets ``[B, T, n_bits]``.
    """

    steps: int = 100
    n_bits: int = 3
    p_pulse: float = 0.05
    dtype: str = DEFAULT_DTYPE

    name = "flip_flop"
    loss = "mse"

    def __post_init__(self):
        object.__setattr__(self, "dtype", task_dtype(self.dtype, "flip_flop: dtype").name)
        flip_flop(1, self.steps, self.n_bits, self.p_pulse, seed=0)  # validates the fields

    @property
    def n_inputs(self) -> int:
        return self.n_bits

    @property
    def n_outputs(self) -> int:
        return self.n_bits

    def params(self) -> dict:
        """The parameters :func:`make_task` takes to rebuild this task."""
        return dataclasses.asdict(self)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` fresh trials drawn from ``rng`` (a numpy Generator)."""
        inputs, targets = flip_flop(_check_batch_size(batch_size), self.steps, self.n_bits,
                                    self.p_pulse, seed=_check_rng(rng), dtype=self.dtype)
        return Batch(inputs, targets)


@dataclass(frozen=True)
class NeurogymTask:
    """A neurogym task (optional extra) as a task: ``make_task("neurogym:<id>", ...)``.

    Each row of a batch is one env, seeded from ``rng``, playing consecutive
    trials from a trial start until ``seq_len`` steps are filled (the last
    trial cut), so a batch depends on ``rng`` alone.

    **Fields:** `env_id` (``"PerceptualDecisionMaking-v0"``), `seq_len`
    (``T``, default 100), `dt` (the env's step in ms; ``None`` keeps the
    env's), `env_kwargs` (other keywords of the env), `dtype`
    (``"float32"``). Loss ``"cross_entropy"`` for a discrete action space
    (labels ``[B, T]``), else ``"mse"``.
    """

    env_id: str
    seq_len: int = 100
    dt: float | None = None
    env_kwargs: dict = field(default_factory=dict)
    dtype: str = DEFAULT_DTYPE

    def __post_init__(self):
        object.__setattr__(self, "dtype", task_dtype(self.dtype, f"{self.name}: dtype").name)
        if isinstance(self.seq_len, bool) or not isinstance(self.seq_len, (int, np.integer)) or self.seq_len < 1:
            raise MRNNConfigError(f"{self.name}: seq_len must be an integer >= 1, got {self.seq_len!r}")
        if not isinstance(self.env_kwargs, dict):
            raise MRNNConfigError(
                f"{self.name}: env_kwargs: expected a dict, got {type(self.env_kwargs).__name__}")
        object.__setattr__(self, "_cache", {})
        self._env()  # builds it now, so a bad id or keyword fails here

    def __hash__(self):
        return hash((self.env_id, self.seq_len, self.dt, self.dtype))

    @property
    def name(self) -> str:
        return NEUROGYM_PREFIX + self.env_id

    def _env(self):
        if "env" not in self._cache:
            from .neurogym import quiet_gymnasium, require_neurogym

            ngym = require_neurogym()
            kwargs = dict(self.env_kwargs)
            if self.dt is not None:
                kwargs["dt"] = self.dt
            try:
                with quiet_gymnasium():
                    env = ngym.make(self.env_id, **kwargs)
            except Exception as err:  # gymnasium raises several types for a bad id or keyword
                raise MRNNConfigError(
                    f"{self.name}: neurogym could not make the env {self.env_id!r} with "
                    f"{kwargs}: {type(err).__name__}: {err}") from None
            self._cache["env"] = env
        return self._cache["env"]

    @property
    def env(self):
        """The (unwrapped) neurogym env this task plays."""
        env = self._env()
        return getattr(env, "unwrapped", env)

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.env.observation_space.shape))

    @property
    def n_outputs(self) -> int:
        space = self.env.action_space
        return int(space.n) if hasattr(space, "n") else int(np.prod(space.shape))

    @property
    def loss(self) -> str:
        return "cross_entropy" if hasattr(self.env.action_space, "n") else "mse"

    def params(self) -> dict:
        """The parameters :func:`make_task` takes (after the name) to rebuild this task."""
        return {"seq_len": self.seq_len, "dt": self.dt, "env_kwargs": dict(self.env_kwargs),
                "dtype": self.dtype}

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` rows of trials, each row's env seeded from ``rng``."""
        batch_size, rng = _check_batch_size(batch_size), _check_rng(rng)
        env, T = self.env, self.seq_len
        discrete = hasattr(env.action_space, "n")
        inputs = np.zeros((batch_size, T, self.n_inputs), dtype=self.dtype)
        targets = (np.zeros((batch_size, T), dtype=np.int64) if discrete
                   else np.zeros((batch_size, T, self.n_outputs), dtype=self.dtype))
        for b, seed in enumerate(rng.integers(0, 2**31, size=batch_size)):
            env.seed(int(seed))
            t = 0
            while t < T:
                env.new_trial()
                ob, gt = np.asarray(env.ob), np.asarray(env.gt)
                n = min(len(ob), T - t)
                inputs[b, t:t + n] = ob[:n].reshape(n, -1)
                targets[b, t:t + n] = gt[:n] if discrete else gt[:n].reshape(n, -1)
                t += n
        return Batch(inputs, targets)


TASKS = ("flip_flop", NEUROGYM_PREFIX + "<env id>")


def make_task(name: str, **params):
    """A task object by name, for training functions and sweeps.

    **Arguments:**

    - `name`: ``"flip_flop"`` (:class:`FlipFlopTask`) or
      ``"neurogym:<env id>"`` (:class:`NeurogymTask`, e.g.
      ``"neurogym:PerceptualDecisionMaking-v0"``; needs neurogym).
    - `params`: the task's fields (``dtype="float64"`` for a float64 model).

    **Returns:** the task: ``name``, ``params()``, ``n_inputs``,
    ``n_outputs``, ``loss`` (``"mse"`` or ``"cross_entropy"``) and
    ``sample(batch_size, rng) -> Batch``.
    """
    if not isinstance(name, str):
        raise MRNNConfigError(f"make_task: name: expected a str, got {type(name).__name__}")
    if name.startswith(NEUROGYM_PREFIX):
        cls, args = NeurogymTask, (name[len(NEUROGYM_PREFIX):],)
        if not args[0]:
            raise MRNNConfigError(
                f"make_task: {name!r} names no neurogym env; expected e.g. "
                f"'neurogym:PerceptualDecisionMaking-v0'")
    elif name == "flip_flop":
        cls, args = FlipFlopTask, ()
    else:
        raise MRNNConfigError(f"make_task: unknown task {name!r}{closest(name, ['flip_flop'])}; "
                              f"{known('tasks', TASKS)}")
    fields = [f.name for f in dataclasses.fields(cls) if f.name != "env_id"]
    unknown = [k for k in params if k not in fields]
    if unknown:
        raise MRNNConfigError(
            f"make_task({name!r}): unknown parameter {unknown[0]!r}{closest(unknown[0], fields)}; "
            f"{known('parameters', fields)}")
    return cls(*args, **params)
