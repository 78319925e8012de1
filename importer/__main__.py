"""``python -m importer`` is the same as the ``routera-import`` command."""

import sys

from importer.cli import main

sys.exit(main())
