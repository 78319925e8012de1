"""``python -m importer`` is the same as the ``routera-import`` command."""

import sys

from importer._entry import main

sys.exit(main())
