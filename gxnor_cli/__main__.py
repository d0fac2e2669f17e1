import sys

from gxnor_cli import main

sys.exit(main())
