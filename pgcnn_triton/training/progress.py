"""Progress text of training runs and reproductions: durations and the ``--log-interval`` line."""

from __future__ import annotations


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(epoch: int, epochs: int, done: int, total: int, sums: list[float], images_per_s: float,
                  lr: float, seconds: float) -> str:
    """``--log-interval``'s line: where the epoch is (``done`` of ``total`` batches), running loss / accuracy
    (``sums``: ce·n, reg·n, correct, n), throughput, learning rate and the epoch's ETA."""
    left = seconds / done * (total - done)
    return (f"epoch {epoch}/{epochs} batch {done}/{total} ({100 * done / total:.0f}%): "
            f"loss {sums[0] / sums[3]:.4f} acc {sums[2] / sums[3]:.3f} | {images_per_s:.1f} img/s | "
            f"lr {lr:.2e} | ETA epoch {format_seconds(left)}")
