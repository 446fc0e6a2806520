import sys

from svpn.cli import main

sys.exit(main())
