"""`python -m handoff.bench [--quick] [--out FILE]`: the same as `handoff bench`."""

import sys

from handoff.bench.run import main

sys.exit(main())
