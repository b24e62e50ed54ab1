import sys

from sidecache.cli import main

sys.exit(main())
