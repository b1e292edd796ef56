"""Running the installed ``cocoa`` command as a newcomer would.

Each test gets a home of its own (``HOME``, no ``XDG_*``, no ``COCOA_*``)
and runs from a folder that is not the checkout, so nothing depends on the
current directory and nothing touches the real user's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

COCOA = str(Path(sys.executable).parent / "cocoa")  # the console script `pip install` made


@dataclass
class Newcomer:
    home: Path
    cwd: Path

    @property
    def data_dir(self) -> Path:
        """The per-user default data directory under this home."""
        return self.home / ".local" / "share" / "cocoa"

    @property
    def config_file(self) -> Path:
        return self.home / ".config" / "cocoa" / "config"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("COCOA_", "XDG_")) and k != "HOME"}
        env.update(HOME=str(self.home), PYTHONUNBUFFERED="1", COLUMNS="200", **extra)
        return env

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 180,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([COCOA, *args], env=self.env(**env), cwd=cwd or self.cwd,
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([COCOA, *args], env=self.env(**env), cwd=self.cwd,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)


def newcomer(tmp_path: Path) -> Newcomer:
    home, cwd = tmp_path / "home", tmp_path / "somewhere" / "else"
    home.mkdir()
    cwd.mkdir(parents=True)
    return Newcomer(home, cwd)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
