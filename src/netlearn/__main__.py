"""``python -m netlearn``: the same command line as ``netlearn``."""
import sys

from .cli import main

sys.exit(main())
