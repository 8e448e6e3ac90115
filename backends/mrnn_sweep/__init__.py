"""mrnn_sweep: sweeps of mrnn training runs on Ray Tune, locally or on a Ray cluster.

A sweep file (TOML or JSON) names a network, a backend (``"torch"`` or
``"jax"``), a task, training settings and a search space over any of them;
each trial is one resumable training run (``mrnn_torch.train.train`` or
``mrnn_jax.train.train``) reporting its loss and checkpoint to Tune::

    import mrnn_sweep
    results = mrnn_sweep.run_sweep("examples/sweeps/flipflop_grid.toml")
    print(results.best())                       # lowest final loss
    model, readout = results.load_best("jax")   # into either backend

From a shell: ``mrnn sweep sweep.toml`` (``--address`` for a cluster) and
``mrnn results sweeps/<name>``. Needs the ``sweep`` extra
(``pip install "mrnn[sweep]"``); the core and the backends never import
Ray or this package.
"""

from ._results import SweepResults as SweepResults
from ._results import TrialResult as TrialResult
from ._results import open_sweep as open_sweep
from ._run import run_sweep as run_sweep
from ._run import start_local_ray as start_local_ray
from ._schema import Sweep as Sweep
from ._schema import load_sweep as load_sweep
from ._space import Domain as Domain

__all__ = ["run_sweep", "load_sweep", "open_sweep", "start_local_ray", "Sweep", "SweepResults",
           "TrialResult", "Domain"]
