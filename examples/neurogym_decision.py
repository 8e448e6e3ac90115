"""Train a PyTorch mRNN on neurogym's perceptual decision-making task; print its accuracy.

    python examples/neurogym_decision.py                   # 200 steps: about 10 s on one CPU core
    python examples/neurogym_decision.py --steps 50        # a quick look
    python examples/neurogym_decision.py --run-dir runs/pdm          # checkpoint as it trains;
    python examples/neurogym_decision.py --run-dir runs/pdm --resume # continue after a crash

The task (neurogym's ``PerceptualDecisionMaking-v0``, 20 ms steps): a
fixation cue, then two noisy evidence channels, one of them stronger; when
the fixation cue goes off, the network must report the stronger side (class
1 or 2), and fixate (class 0) before. Coherences range from 0 (pure noise:
chance is all one can do) to 51.2 %.

The network: one cortical region of 64 tanh units (no Dale's law) stepping
with the task's ``dt`` (``alpha = dt / tau = 20 / 100``), read out by a
3-class linear readout. ``mrnn_torch.train.train`` trains both with Adam
and a softmax cross-entropy on the task's labels, on fresh trials every
step (``mrnn_core.tasks.make_task("neurogym:PerceptualDecisionMaking-v0")``),
decision steps weighing 5 times a fixation step (a loss mask).

Accuracy is measured on 256 held-out trials at their decision steps: the
readout's largest class must be the correct side. Untrained: about 0.3;
after the default 200 steps: 0.86 (seed 0; the zero-coherence trials cap
it below 1), while holding fixation on 99 % of the steps before.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import mrnn_core
from mrnn_core import neurogym as task_data
from mrnn_core.tasks import Batch, make_task
from mrnn_torch import Readout, mRNN
from mrnn_torch.train import train

TASK = "neurogym:PerceptualDecisionMaking-v0"


def build(task, seed: int):
    """A 64-unit tanh cortex stepping with the task's dt, and its 3-class readout."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("ctx", 64)
            .with_input_region("task", task.n_inputs)
            .with_recurrent_connection("ctx", "ctx")
            .with_input_connection("task", "ctx"))
    dynamics = task_data.task_dynamics(task.env, tau=100.0, activation="tanh",
                                       rec_constrained=False, inp_constrained=False,
                                       noise_level_act=0.05, noise_level_inp=0.0)
    model = mRNN.from_checkpoint(mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed),
                                 device="cpu")
    return model, Readout(model, "ctx", task.n_outputs, seed=seed + 1)


class DecisionWeighted:
    """The task, with each decision step weighing ``weight`` times a fixation step in the loss.

    Decision steps are few (5 of a trial's 45); unweighted, "always fixate"
    is a deep local minimum.
    """

    def __init__(self, task, weight: float):
        self.task, self.weight = task, weight
        self.loss = task.loss

    def sample(self, batch_size, rng):
        batch = self.task.sample(batch_size, rng)
        mask = np.where(batch.targets > 0, self.weight, 1.0).astype(batch.inputs.dtype)
        return Batch(batch.inputs, batch.targets, mask)


def decision_accuracy(model, readout, task, seed: int) -> tuple[float, float]:
    """Fraction of decision steps of 256 held-out trials answered correctly, and of fixation steps."""
    batch = task.sample(256, np.random.default_rng([seed, 2**31]))
    with torch.no_grad():
        x0, h0 = model.batched_initial_condition(256)
        _, hs = model(torch.from_numpy(batch.inputs), x0, h0)
        choice = readout(hs).argmax(-1).numpy()
    decide = batch.targets > 0
    return (float(np.mean(choice[decide] == batch.targets[decide])),
            float(np.mean(choice[~decide] == 0)))


def main(argv=None) -> float:
    """Train, print the accuracy, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100, help="steps per row (2 trials)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decision-weight", type=float, default=5.0,
                        help="weight of a decision step in the loss (fixation steps: 1)")
    parser.add_argument("--run-dir", default=None, help="checkpoint the run in this folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    # Stimulus 700 ms: a trial is 100 + 700 + 100 ms = 45 steps, so a row of
    # 100 steps holds two whole trials and the start of a third.
    task = make_task(TASK, seq_len=args.seq_len, dt=20, env_kwargs={"timing": {"stimulus": 700}})
    model, readout = build(task, args.seed)
    before, _ = decision_accuracy(model, readout, task, args.seed)
    print(f"{TASK}: {task.n_inputs} inputs, {task.n_outputs} classes, dt = "
          f"{model.dynamics.dt:g} ms, alpha = {model.alpha:g}; H = {model.total_num_units} units")
    result = train(model, DecisionWeighted(task, args.decision_weight), readout=readout, steps=args.steps, batch_size=args.batch,
                   lr=args.lr, loss="cross_entropy", seed=args.seed, run_dir=args.run_dir,
                   resume=args.resume, checkpoint_every=100, progress=not args.no_progress)
    tail = result.history[-max(1, len(result.history) // 10):]
    print(f"trained {result.step} steps: cross-entropy {result.history[0]:.3f} (first step) -> "
          f"{np.mean(tail):.3f} (mean of the last {len(tail)})")
    accuracy, fixation = decision_accuracy(model, readout, task, args.seed)
    print(f"decision accuracy {accuracy:.3f} on 256 held-out trials (untrained {before:.3f}; "
          f"fixation held on {fixation:.3f} of the steps before)")
    if result.last_checkpoint:
        print(f"last checkpoint: {result.last_checkpoint}")
    return accuracy


if __name__ == "__main__":
    main()
