"""Time the steps of a long job and show them on a progress bar (tqdm)."""

from __future__ import annotations

import time


class Steps:
    """A job's named steps: ``done(name)`` records the time since the last step."""

    def __init__(self, names: list[str], show: bool, desc: str = "ingest"):
        self.names, self.timings = names, {}
        self.bar = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=len(names), desc=desc, unit="step", leave=False)
        self._t = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._t
        self._t = now
        if self.bar is not None:
            self.bar.set_postfix_str(name)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
