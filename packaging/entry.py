"""The frozen binary's entry point: the `registry-appliance` console script, nothing else.

PyInstaller starts here instead of a Twisted plugin (`twist`), so `serve` installs the
reactor itself through `react()` and no plugin discovery runs in the frozen binary.
"""

import sys

from appliance.cli import main

if __name__ == "__main__":
    sys.exit(main())
