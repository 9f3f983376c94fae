"""Where the corpus of real messages written by others lives (``shared/corpus`` of the workplace).

``CORPUS``: the folder named by ``MAILKITE_CORPUS``, else ``../shared/corpus`` beside the checkout
(where the project's machines keep it). Tests, benchmarks and tools take the path from here, so a
checkout elsewhere needs one setting, not edits in every module; a test that finds no corpus files
fails and names this path.
"""

from __future__ import annotations

import os
from pathlib import Path

CORPUS = Path(os.environ.get("MAILKITE_CORPUS") or Path(__file__).resolve().parents[3] / "shared" / "corpus")
