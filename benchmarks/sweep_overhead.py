"""What a sweep on Ray Tune costs: N equal trials on a local Ray against the same N training
runs one after another in this process, in one run.

    .venv/bin/python benchmarks/sweep_overhead.py                  # 8 trials, 2 CPUs, 3 rounds
    .venv/bin/python benchmarks/sweep_overhead.py --quick          # a few steps: checks it runs
    .venv/bin/python benchmarks/sweep_overhead.py --markdown benchmarks/RESULTS.md

Each round times, back to back (so outside load hits all three alike):

- **sequential**: the N runs one after another in this process (one torch
  thread), each exactly what a trial runs: the network built from the sweep's
  settings, ``mrnn_<backend>.train.train`` with the same steps, batch size
  and checkpoints, no Ray.
- **process pool**: the same N runs in ``--cpus`` plain worker processes
  (``concurrent.futures``, spawned, no Ray): what this machine gives that
  many processes at the moment, the control for the sweep.
- **sweep**: ``mrnn_sweep.run_sweep`` of the same N trials (``num_samples =
  N``, one CPU each) on a local Ray of ``--cpus`` CPUs started once before
  the rounds as ``run_sweep`` starts it (``mrnn_sweep.start_local_ray``:
  trial workers at normal priority), its start-up timed on its own.
- **empty sweep, N trials** and **empty sweep, CPUs trials**: the same
  sweep with 1 training step per trial, so almost all of it is Ray's and the
  runner's: starting the trial workers (a Python process importing Ray and
  torch, once per worker: trials reuse their workers), the trainable's
  set-up, one report with its checkpoint, the results table. The difference
  between the two gives the overhead of one more trial,
  ``(empty_N - empty_CPUs) x CPUs / (N - CPUs)`` CPU-seconds, and what is
  left of ``empty_CPUs`` is the sweep's fixed start-up.

The table gives medians over the rounds, the ratio sweep / sequential (the
issue's target: at most 0.6 with 8 trials on 2 CPUs; 1 / CPUs is the ideal),
the fixed start-up and the per-trial overhead, and Ray's own start-up
(``ray.init``, once per process, timed on its own).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT, ROOT / "backends"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

NETWORK = {
    "recurrent_regions": [{"name": "exc", "num_units": 48, "sign": "pos"},
                          {"name": "inh", "num_units": 16, "sign": "neg"}],
    "input_regions": [{"name": "bits", "num_units": 3, "sign": "pos"}],
    "recurrent_connections": [{"src_region": "exc", "dst_region": "exc", "sparsity": 0.5},
                              {"src_region": "exc", "dst_region": "inh"},
                              {"src_region": "inh", "dst_region": "exc"},
                              {"src_region": "inh", "dst_region": "inh"}],
    "input_connections": [{"src_region": "bits", "dst_region": "exc"}],
}


def sweep_settings(backend: str, trials: int, steps: int, checkpoint_every: int) -> dict:
    return {
        "name": "overhead", "backend": backend, "num_samples": trials,
        "network": {"config": NETWORK, "seed": 0,
                    "dynamics": {"activation": "tanh", "noise_level_act": 0.0,
                                 "noise_level_inp": 0.0},
                    "readout": {"regions": ["exc"]}},
        "task": {"name": "flip_flop", "params": {"steps": 50, "n_bits": 3}},
        "training": {"steps": steps, "batch_size": 16, "lr": 1e-3,
                     "checkpoint_every": min(checkpoint_every, steps)},
        "resources": {"cpus_per_trial": 1, "max_failures": 0},
    }


def _one_run(settings: dict, run_dir: str) -> None:
    """One trial's training run, without Ray: what a trial of the sweep runs."""
    import torch

    from mrnn_sweep import load_sweep
    from mrnn_sweep._schema import build_trial
    from mrnn_sweep._trial import _optimizer, backend_objects

    torch.set_num_threads(1)
    sweep = load_sweep(settings)
    task, checkpoint, training = build_trial(sweep.base)
    model, readout, train_module = backend_objects(sweep.backend, checkpoint)
    train_module.train(
        model, task, optimizer=_optimizer(sweep.backend, training["optimizer"], training["lr"]),
        lr=training["lr"], steps=training["steps"], batch_size=training["batch_size"],
        readout=readout, run_dir=run_dir, checkpoint_every=training["checkpoint_every"],
        keep=training["keep"], seed=training["seed"], progress=False, loss=training["loss"])


def run_sequential(settings: dict, folder: str) -> float:
    """The sweep's trials as plain training runs, one after another in this process; seconds."""
    start = time.perf_counter()
    for i in range(settings["num_samples"]):
        _one_run(settings, os.path.join(folder, f"run{i}"))
    return time.perf_counter() - start


def run_pool(settings: dict, folder: str, cpus: int) -> float:
    """The same runs in a pool of `cpus` plain worker processes (no Ray); seconds, the pool's
    start-up (a Python process importing torch per worker) included, as the sweep's is."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    with ProcessPoolExecutor(cpus, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = [pool.submit(_one_run, settings, os.path.join(folder, f"run{i}"))
                for i in range(settings["num_samples"])]
        for run in runs:
            run.result()
    return time.perf_counter() - start


def _ray_cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (role, CPU seconds so far) of this process and every Ray process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            command = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            pid = int(folder.name)
            if pid != os.getpid() and "ray" not in command:
                continue
            fields = (folder / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        role = ("driver (run_sweep, Tune's loop)" if pid == os.getpid() else
                "trial workers" if ("ray::" in command and "Agent" not in command)
                or "default_worker.py" in command else "Ray's own processes")
        out[pid] = (role, (int(fields[11]) + int(fields[12])) / tick)
    return out


class CpuMeter:
    """CPU seconds by role while a block runs, sampled every 0.5 s (workers that exit keep
    their last sample). Linux only; elsewhere it measures nothing."""

    def __enter__(self):
        self.before = _ray_cpu_seconds() if os.path.isdir("/proc/self") else {}
        self.latest, self.done = dict(self.before), threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done.wait(0.5):
            if self.before:
                self.latest.update(_ray_cpu_seconds())

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        if self.before:
            self.latest.update(_ray_cpu_seconds())
        self.by_role = {}
        for pid, (role, seconds) in self.latest.items():
            used = seconds - self.before.get(pid, (role, 0.0))[1]
            self.by_role[role] = self.by_role.get(role, 0.0) + used


def run_ray_sweep(settings: dict, folder: str, meter: dict | None = None) -> tuple[float, list]:
    import mrnn_sweep

    start = time.perf_counter()
    with CpuMeter() as cpu:
        results = mrnn_sweep.run_sweep(settings, storage_path=folder, verbose=0, plots=False)
    seconds = time.perf_counter() - start
    if meter is not None:
        for role, used in cpu.by_role.items():
            meter.setdefault(role, []).append(used)
    bad = [t.trial for t in results.trials if t.status != "finished"]
    if bad or len(results.trials) != settings["num_samples"]:
        raise RuntimeError(f"trials did not finish: {bad} (see {results.path})")
    return seconds, [t.wall_time_s for t in results.trials]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--steps", type=int, default=1000, help="training steps per trial")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians over them)")
    parser.add_argument("--backend", choices=("torch", "jax"), default="torch")
    parser.add_argument("--quick", action="store_true", help="4 trials of 10 steps, 1 round")
    parser.add_argument("--markdown", default=None, help="append the table to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.steps, args.repeats = 3, 10, 1

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ray's workers import mrnn_sweep and the backends from this checkout too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "backends")] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    import torch

    torch.set_num_threads(1)
    import ray

    start = time.perf_counter()
    from mrnn_sweep import start_local_ray

    start_local_ray(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    full = sweep_settings(args.backend, args.trials, args.steps, args.checkpoint_every)
    empty = copy.deepcopy(full)
    empty["training"].update(steps=1, checkpoint_every=1)
    empty_few = copy.deepcopy(empty)
    empty_few["num_samples"] = args.cpus
    n, cpus = args.trials, args.cpus
    labels = {"sequential": full, f"process pool of {cpus}, no Ray": full, "sweep": full,
              f"empty sweep, {n} trials": empty,
              f"empty sweep, {cpus} trials": empty_few}
    times = {label: [] for label in labels}
    trial_walls, cpu = [], {}
    try:
        for round_ in range(args.repeats):
            for label in times:
                folder = tempfile.mkdtemp(prefix="sweep_overhead_")
                try:
                    if label == "sequential":
                        times[label].append(run_sequential(full, folder))
                    elif label.startswith("process pool"):
                        times[label].append(run_pool(full, folder, cpus))
                    else:
                        seconds, walls = run_ray_sweep(labels[label], folder,
                                                       cpu if label == "sweep" else None)
                        times[label].append(seconds)
                        if label == "sweep":
                            trial_walls.extend(walls)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                print(f"round {round_ + 1}: {label} {times[label][-1]:.2f} s", flush=True)
    finally:
        ray.shutdown()

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["sweep"] / med["sequential"]
    pool = med[f"process pool of {cpus}, no Ray"]
    empty_n, empty_few = med[f"empty sweep, {n} trials"], med[f"empty sweep, {cpus} trials"]
    per_trial = (empty_n - empty_few) * cpus / (n - cpus) if n > cpus else float("nan")
    start_up = empty_few - per_trial  # the CPUs trials ran side by side: one per-trial cost
    load = os.getloadavg()
    lines = [
        f"{n} equal trials ({args.backend}, 48+16 units, flip-flop T=50, batch 16, "
        f"{args.steps} steps, a checkpoint every {min(args.checkpoint_every, args.steps)}), "
        f"{cpus} CPUs, {args.repeats} round(s), load average {load[0]:.1f} at the end",
        "",
        "| what | median s | rounds s |",
        "|---|---|---|",
        *[f"| {k} | {med[k]:.2f} | {', '.join(f'{t:.2f}' for t in v)} |" for k, v in times.items()],
        f"| Ray start-up (`ray.init`, once) | {ray_start:.2f} | |",
        f"| one trial inside the sweep (Tune's time_total_s, median) | "
        f"{statistics.median(trial_walls):.2f} | |",
        f"| one run in the sequential loop (sequential / {n}) | {med['sequential'] / n:.2f} | |",
        *[f"| CPU seconds during the sweep: {role} | {statistics.median(v):.2f} | "
          f"{', '.join(f'{t:.2f}' for t in v)} |" for role, v in sorted(cpu.items())],
        "",
        "| ratio / overhead | value |",
        "|---|---|",
        f"| sweep / sequential (target <= 0.6, ideal {1 / cpus:.2f}) | {ratio:.2f} |",
        f"| process pool / sequential (what this machine gives {cpus} processes) | "
        f"{pool / med['sequential']:.2f} |",
        f"| sweep / process pool (Ray's cost over plain processes) | {med['sweep'] / pool:.2f} |",
        f"| sweep start-up (workers started, imports): empty, {cpus} trials, less their "
        f"per-trial share | {start_up:.2f} s |",
        f"| per-trial overhead: (empty {n} - empty {cpus}) x CPUs / ({n} - {cpus}) | "
        f"{per_trial:.2f} CPU-s |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
