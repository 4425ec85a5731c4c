"""The `cardbridge` console command: runs the binary bundled in the wheel
(`cardbridge/_bin/`) with the same arguments, exit code and streams."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    name = "cardbridge.exe" if os.name == "nt" else "cardbridge"
    binary = Path(__file__).resolve().parent / "_bin" / name
    if not binary.is_file():
        print(f"cardbridge: this installation has no bundled binary ({binary})", file=sys.stderr)
        return 127
    if os.name != "nt":
        os.execv(binary, [str(binary), *sys.argv[1:]])  # replaces this process (signals, exit code)
    return subprocess.call([str(binary), *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
