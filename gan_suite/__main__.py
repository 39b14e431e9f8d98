import sys

from gan_suite.cli import main

sys.exit(main())
