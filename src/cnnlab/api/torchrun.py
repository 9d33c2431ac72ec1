"""`cnnlab train ... --nproc N` runs `python -m cnnlab.api.torchrun TORCHRUN-ARGS`: torchrun
(torch.distributed.run, its agent and its rank processes unchanged) with cnnlab's exit codes and messages.

torchrun alone ends a signalled or failed launch with its own Python traceback and exit 1, after every rank
has already said what happened: "interrupted: SIGTERM during epoch 3 after step 108. Continue with: ...",
or a one-line error. Here that ends as `cnnlab train` on one process does: 128 + the signal's number
(130 SIGINT, 143 SIGTERM), or the failed rank's own exit code (2: a mistake it named, 3: diverged), with one
line instead of the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        # not run.main: its @record prints the traceback we replace (torch leaves run/parse_args unannotated)
        run.run(run.parse_args(list(argv)))  # type: ignore[no-untyped-call]
    except SignalException as exc:  # the agent forwarded the signal; every rank checkpointed and said so
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()  # the first to end; the others were then stopped by torchrun
        code = failure.exitcode
        if code < 0:  # a rank killed by a signal (the out-of-memory killer, kill -9)
            print(f"torchrun: rank {rank} was killed by signal {-code}; the run resumes from its last checkpoint "
                  "with --resume", file=sys.stderr)
            return 128 - code
        print(f"torchrun: rank {rank} ended first, with exit code {code} (the message is above)", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
