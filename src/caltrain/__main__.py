"""``python -m caltrain`` is the ``caltrain`` command."""

import sys

from caltrain.cli.main import main

sys.exit(main())
