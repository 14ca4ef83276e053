"""A stand-in training script, run as a subprocess by the tests: `python trainer.py MODE PROJECT`.

It prints the run id, then "ready" once its first 100 rows are logged; the server, key and spool
come from CURVECAST_URL / CURVECAST_API_KEY / CURVECAST_SPOOL_DIR.

MODE: crash (raise after logging), exit (leave without finish), sigterm (wait to be killed),
sigterm-chained (the same, with a SIGTERM handler of its own installed first), stream (log
forever, printing how many rows `log` has returned for, every 1000 rows).
"""

import signal
import sys
import time

import curvecast


def main(mode: str, project: str) -> None:
    if mode == "sigterm-chained":
        signal.signal(signal.SIGTERM, _own_handler)
    run = curvecast.init(project=project, name=mode)
    print(run.id, flush=True)
    for step in range(100):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    print("ready", flush=True)
    if mode == "crash":
        raise RuntimeError("diverged")
    if mode.startswith("sigterm"):
        # Short naps, as a training loop's steps: Python runs a signal handler only between
        # the main thread's bytecodes, so a single 60 s sleep would hold it back for good
        # whenever the kernel hands the signal to one of the client's threads instead.
        for _ in range(600):
            time.sleep(0.1)
    if mode == "stream":
        step = 100
        while True:
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            step += 1
            if step % 20 == 0:
                time.sleep(0.001)
            if step % 1000 == 0:
                print(step, flush=True)


def _own_handler(signum: int, frame: object) -> None:
    print("own handler ran", flush=True)
    sys.exit(3)


if __name__ == "__main__":
    main(*sys.argv[1:])
