import logging
import sys

from kdtts.cli import main

logging.basicConfig(level=logging.INFO, format="kdtts: %(message)s", stream=sys.stderr)  # progress notes to stderr
main()
