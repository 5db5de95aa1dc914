"""Entry point of ``python -m jtcaug.train`` (see ``jtcaug.train.cli``)."""

import sys

from jtcaug.train.cli import main

sys.exit(main())
