import sys

from naskahd.cli import main

sys.exit(main())
