"""Child processes as Linux's /proc sees them (for tests and benchmarks that watch mailkite's roles)."""

from __future__ import annotations

from pathlib import Path


def children(pid: int) -> list[int]:
    """The direct children of ``pid``, started by any of its threads (``/proc/PID/task/*/children``:
    ``task/PID/children`` alone lists only the main thread's). Empty if ``pid`` is gone."""
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(k) for k in (task / "children").read_text().split()]
    except OSError:
        pass
    return kids


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, at any depth."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out
