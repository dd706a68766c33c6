import sys

from payments.sandbox.cli import main

sys.exit(main())
