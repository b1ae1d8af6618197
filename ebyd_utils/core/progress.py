"""Progress you can see in a terminal, kept out of executed notebooks.

A notebook run by papermill cannot print to the terminal: whatever its kernel prints is stored in the executed
copy. So long work reports one line per event through a side channel instead. `python -m
ebyd_utils.run_notebooks` sets PROGRESS_ENV to a file, the kernel appends lines to it (`report`), and the runner
prints them as they arrive (`follow`). Outside such a run `report` does nothing: a notebook opened by hand
shows its own progress bars.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROGRESS_ENV = "EBYD_PROGRESS_FILE"


def report(line: str) -> None:
    """Append one line to the progress side channel, if a runner listens (else nothing)."""
    path = os.environ.get(PROGRESS_ENV)
    if path:
        try:
            with open(path, "a") as f:  # one short append per line: readers never see half a line
                f.write(line.rstrip("\n") + "\n")
        except OSError:  # the listener has gone: progress is never worth failing a unit
            pass


def eta(done: int, total: int, elapsed: float) -> str:
    """'k/n, elapsed, ~left' from the mean time of the finished units (the first units may be cached ones,
    so this is a rough guide that settles as computed units finish)."""
    left = (total - done) * elapsed / done if done else float("nan")
    left_text = f"~{_clock(left)} left" if done and done < total else ("done" if done >= total else "left: ?")
    return f"{done}/{total}, {_clock(elapsed)} elapsed, {left_text}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def follow(path: Path, emit, stop: threading.Event, poll_s: float = 0.5) -> None:
    """Call emit(line) for every line appended to `path` until `stop` is set (then drain what is left)."""
    position = 0
    while True:
        stopping = stop.is_set()
        if path.exists():
            with open(path, "rb") as f:
                f.seek(position)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # leave a line being written for the next poll
            position += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                emit(line)
        if stopping:
            return
        time.sleep(poll_s)


class Follower:
    """A background thread that prints the side channel's lines while a block runs:

    with Follower(path, print):
        run_the_notebook()
    """

    def __init__(self, path: Path, emit):
        self.path, self.emit, self.stop = Path(path), emit, threading.Event()
        self.thread = threading.Thread(target=follow, args=(self.path, emit, self.stop), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False
