"""The training program the SIGKILL test starts, kills and restarts (`tests.training.test_checkpoint`).

Run as ``python -m tests.training.resume_script WORKDIR TOTAL SAVE_EVERY SLEEP`` from the repository root:
it resumes from WORKDIR's newest checkpoint, trains to step TOTAL (sleeping SLEEP seconds a step, so the
test can kill it between saves), printing ``start STEP POSITION`` and ``saved STEP`` lines, and writes the
final params' leaves to ``final.npz`` and this run's ``{step: loss_sum}`` to ``losses.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tests.training.loop import leaves, run_training


def main(argv):
    workdir, total, save_every, sleep = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    state, losses = run_training(workdir, total, save_every, sleep=sleep, print_fn=lambda s: print(s, flush=True))
    np.savez(Path(workdir) / "final.npz", **{f"leaf_{i}": x for i, x in enumerate(leaves(state.params))})
    (Path(workdir) / "losses.json").write_text(json.dumps(losses))


if __name__ == "__main__":
    main(sys.argv[1:])
