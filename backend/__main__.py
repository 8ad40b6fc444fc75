import sys

from backend.launcher import main

sys.exit(main())
