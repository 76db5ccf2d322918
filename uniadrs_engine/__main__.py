"""Allows ``python -m uniadrs_engine``, the same as the ``uniadrs`` command."""

import sys

from uniadrs_engine.cli.main import main

sys.exit(main())
