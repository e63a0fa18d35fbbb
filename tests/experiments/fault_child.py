"""The program a crash test starts and kills: an experiment's own command line, stopped at a chosen moment.

``python -m tests.experiments.fault_child POINT STEP MODULE [FLAGS...]`` runs ``python -m experiments.MODULE
FLAGS...`` unchanged, with a fault hook (`rnn_jax.training.faults`) that, when the loop reaches POINT at
STEP, prints ``REACHED POINT STEP`` and sleeps: the parent then sends SIGKILL at exactly that moment. With
POINT ``none`` the program runs to its end.
"""

import runpy
import sys
import time

from rnn_jax.training import faults


def main(argv):
    point, step, module = argv[0], int(argv[1]), argv[2]

    def hold(reached_point: str, reached_step: int) -> None:
        if (reached_point, reached_step) == (point, step):
            print(f"REACHED {point} {step}", flush=True)
            time.sleep(600)  # killed here; never returns in a test

    if point != "none":
        faults.set_hook(hold)
    sys.argv = [f"experiments.{module}", *argv[3:]]
    runpy.run_module(f"experiments.{module}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
