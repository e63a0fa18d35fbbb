"""What every experiment's command line shares: its flags, the console, the config -> loop mapping.

An experiment module defines its task (`rnn_jax.training.Task`) and a thin ``main``; this module
gives it the standard flags (``--workdir``, ``--config=experiments/configs/<task>.py[:variant]`` with
``--config.<field>=value`` overrides, ``--keep_host_memory``, and the multi-process launch:
``--coordinator_address``, ``--num_processes``, ``--process_id``), quiets third-party INFO logs unless
``--verbosity`` is given (orbax's option dumps, JAX's backend probing), and maps the config's loop
fields onto `rnn_jax.training.LoopSettings`.

Several processes (one per host, or several on one machine): each is started with the same command plus
``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` (or the environment variables
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``), and `start` calls
``jax.distributed.initialize`` before anything touches a device. ``--distributed`` alone lets JAX detect
the cluster (SLURM, Open MPI, Cloud TPU). The launch is not part of the config: a run may resume on
another number of processes or devices.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from absl import flags, logging
import jax
import ml_collections
from ml_collections import config_flags

from rnn_jax import training

FLAGS = flags.FLAGS
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def define_flags(task: str, flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines ``--workdir``, ``--config`` (default ``experiments/configs/<task>.py``) and ``--keep_host_memory``.

    Called only when an experiment runs as a program, so importing its module defines no flags.
    """
    flags.DEFINE_string("workdir", None, "Checkpoints, metrics, results and plots go here; a restarted run "
                        "resumes from its newest checkpoint.", flag_values=flag_values)
    config_flags.DEFINE_config_file(
        "config", os.path.join(CONFIG_DIR, f"{task}.py"), f"Config file, optionally with a variant: "
        f"experiments/configs/{task}.py:<variant>; override fields with --config.<field>=<value>.",
        flag_values=flag_values, lock_config=True)
    flags.DEFINE_bool("keep_host_memory", True, "glibc malloc keeps freed memory for reuse "
                      "(rnn_jax.training.host): XLA:CPU's per-step buffers stop page-faulting; the process "
                      "keeps its peak memory.", flag_values=flag_values)
    flags.DEFINE_string("coordinator_address", os.environ.get("JAX_COORDINATOR_ADDRESS"), "host:port of process "
                        "0 in a multi-process run (default $JAX_COORDINATOR_ADDRESS).", flag_values=flag_values)
    flags.DEFINE_integer("num_processes", _env_int("JAX_NUM_PROCESSES"), "Processes in a multi-process run "
                         "(default $JAX_NUM_PROCESSES).", flag_values=flag_values)
    flags.DEFINE_integer("process_id", _env_int("JAX_PROCESS_ID"), "This process's index, 0..num_processes-1 "
                         "(default $JAX_PROCESS_ID).", flag_values=flag_values)
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() even without the flags above "
                      "(JAX detects SLURM, Open MPI or Cloud TPU).", flag_values=flag_values)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return None if value in (None, "") else int(value)


def initialize_distributed(flag_values: flags.FlagValues = FLAGS) -> bool:
    """Calls ``jax.distributed.initialize`` when the launch flags ask for several processes; returns whether."""
    given = (flag_values.coordinator_address, flag_values.num_processes, flag_values.process_id)
    if not (flag_values.distributed or flag_values.coordinator_address or (flag_values.num_processes or 1) > 1):
        return False
    jax.distributed.initialize(*given)
    print(f"process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} local of "
          f"{jax.device_count()} devices", flush=True)
    return True


def start(flag_values: flags.FlagValues = FLAGS) -> ml_collections.ConfigDict:
    """Returns the parsed config after checking ``--workdir`` and setting up the process and console."""
    if not flag_values.workdir:
        raise flags.IllegalFlagValueError("--workdir is required")
    if not flag_values["verbosity"].present:  # our lines are printed; third-party INFO only when asked
        logging.set_verbosity(logging.WARNING)
    if flag_values.keep_host_memory:
        training.keep_host_memory()
    initialize_distributed(flag_values)
    return flag_values.config


def loop_settings(config: ml_collections.ConfigDict, *, best_metric: str | None, best_mode: str = "min",
                  save_every: int | None = None) -> training.LoopSettings:
    """Returns the `LoopSettings` of a config's loop fields (``log_every``, ``eval_every``, ``save_every``,
    ``keep_checkpoints``, ``seed``, ``micro_batches``), with the task's selection metric."""
    return training.LoopSettings(log_every=config.log_every, eval_every=config.get("eval_every"),
                                 save_every=config.get("save_every", save_every),
                                 keep=config.get("keep_checkpoints", 2), best_metric=best_metric,
                                 best_mode=best_mode, seed=config.seed, micro_batches=config.get("micro_batches", 1))


def run_task(make_task: Callable[[ml_collections.ConfigDict, str | os.PathLike], training.Task],
             config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, best_metric: str | None,
             best_mode: str = "min") -> dict:
    """Trains ``make_task(config, workdir)`` in `workdir` (resuming), selects by `best_metric`, evaluates
    every set; returns the results.

    The workdir is checked (created, writable) and, with ``config.start_over``, emptied of a previous run
    before the task is built, so nothing the task writes there (a vocabulary) survives from that run.
    """
    training.prepare_workdir(workdir)
    if config.get("start_over", False) and training.start_over(workdir):
        print(f"start_over: discarded the previous run in {workdir}", flush=True)
    settings = loop_settings(config, best_metric=best_metric, best_mode=best_mode)
    return training.train_and_evaluate(make_task(config, workdir), settings, workdir, config=config.to_dict())


def main_of(train_and_evaluate: Callable, names=("dev", "test")) -> Callable:
    """Returns an absl ``main(argv)`` that runs ``train_and_evaluate(config, workdir)`` and prints `names`."""

    def main(argv):
        del argv
        config = start()
        print_results(train_and_evaluate(config, FLAGS.workdir), names)

    return main


def config_from_workdir(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
    """Returns the config a run in `workdir` was started with (its ``config.json``)."""
    return ml_collections.ConfigDict(training.read_config(workdir))


def print_results(results: Mapping[str, Any], names) -> None:
    """Prints the selected step and the named sets' metrics of a run's results."""
    print(json.dumps({k: results[k] for k in ("step", "selected_step", "wall_time_s")}, indent=1))
    for name in names:
        print(f"{name}: {training.describe(results[name])}")
