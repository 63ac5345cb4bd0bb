import sys

from naslid.cli import main

sys.exit(main())
