#!/usr/bin/env python3
"""Prints the sh blocks of the README's "Packaging, installation and compatibility" section as one
script, for tests/packaging/run.sh to run. The commands are kept as written except for the
install location: `/usr/local` becomes "$PREFIX" and `target/package` becomes "$PACKAGE_OUT" (a
temporary directory each), `sudo ` is dropped, and `ldconfig` (which a temporary prefix does not
need) is left out. The script runs from the repository root with PKG_CONFIG_PATH and
CMAKE_PREFIX_PATH pointing into "$PREFIX", as they do for /usr/local by default."""

from __future__ import annotations

import re
import sys
from pathlib import Path

SECTION = "## Packaging, installation and compatibility"


def main() -> int:
    text = Path(sys.argv[1]).read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else len(text)]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    if not blocks:
        raise SystemExit(f"README.md: no sh block in {SECTION!r}")
    print('mkdir -p "$PREFIX"')
    for block in blocks:
        for line in block.splitlines():
            line = line.replace(" && sudo ldconfig", "").replace("sudo ", "")
            line = line.replace("/usr/local", '"$PREFIX"').replace("target/package", '"$PACKAGE_OUT"')
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
