"""``python -m mailkite`` is the ``mailkite`` command."""

import sys

from mailkite.cli import main

sys.exit(main())
