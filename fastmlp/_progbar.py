"""Keras's text progress bar.

``verbose=1`` draws ``768/768 [==============================] - 0s - loss: 0.6378
- accuracy: 0.6510`` (the Keras 1 format, counting samples), with an ETA while running, redrawn in
place with a carriage return on a terminal; when the output is a file or a
pipe only the finished line is written. ``verbose=2`` writes one line per
epoch (``768/768 - 0s - loss: ...``).
"""

import sys
import time

_WIDTH = 30


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def _format_value(value):
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_eta(seconds):
    if seconds > 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds > 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


class Progbar:
    """Progress over ``target`` samples.

    Args:
        target: the total number of samples.
        verbose: 1 (bar) or 2 (one line when finished).
        stream: where to write (default ``sys.stdout`` at creation).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = Progbar(10, stream=out)
        >>> bar.update(10, {"loss": 0.5}, finalize=True)
        >>> out.getvalue().startswith("10/10 [==============================] - 0s")
        True
    """

    def __init__(self, target, verbose=1, stream=None):
        self.target = target
        self.verbose = verbose
        self.stream = sys.stdout if stream is None else stream
        self.dynamic = _is_terminal(self.stream)
        self.start = time.perf_counter()
        self._drawn = 0

    def update(self, current, values=None, finalize=False):
        """Shows ``current`` samples done and the ``values`` dict (name -> number)."""
        if not finalize and (self.verbose != 1 or not self.dynamic):
            return
        elapsed = time.perf_counter() - self.start
        info = "".join(f" - {k}: {_format_value(v)}" for k, v in (values or {}).items())
        digits = len(str(self.target))
        if self.verbose == 1:
            filled = int(_WIDTH * current / self.target) if self.target else _WIDTH
            bar = "=" * max(filled - 1, 0)
            if filled:
                bar += ">" if current < self.target else "="
            bar = f"{current:{digits}d}/{self.target} [{bar}{'.' * (_WIDTH - filled)}]"
            if finalize:
                line = f"{bar} - {elapsed:.0f}s{info}"
            else:
                eta = elapsed / current * (self.target - current) if current else 0.0
                line = f"{bar} - ETA: {_format_eta(eta)}{info}"
        else:
            line = f"{current}/{self.target} - {elapsed:.0f}s{info}"
        if self.dynamic:
            padding = " " * max(self._drawn - len(line), 0)
            self.stream.write(f"\r{line}{padding}")
            self._drawn = len(line)
        else:
            self.stream.write(line)
        if finalize:
            self.stream.write("\n")
        self.stream.flush()
