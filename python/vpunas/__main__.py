import sys

from vpunas.cli import main

sys.exit(main())
