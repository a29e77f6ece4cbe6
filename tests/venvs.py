"""Third-party clients in virtual environments of their own, as in their own containers.

Their pins (KServe's, for one) are not the project's, so they are installed apart, once per
checkout; a `.installed` marker says the install finished.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def own_venv(folder: Path, requirement: str) -> Path:
    """The Python of a virtual environment at `folder` holding `requirement` (made once)."""
    python = folder / "bin" / "python"
    if not (folder / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", requirement], check=True, timeout=900
        )
        (folder / ".installed").touch()
    return python
