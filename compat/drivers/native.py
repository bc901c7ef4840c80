"""`python -m compat.drivers.native --build`: the matrix's compiled drivers, Go and Rust.

The Go drivers (IBM/sarama, segmentio/kafka-go, twmb/franz-go) are one module, compat/go, whose
go.mod/go.sum pin the clients (franz-go at the release of its own suite, compat/suites/franz_go);
they are built with the Go toolchain into `.cache/go/drivers/`, the modules fetched from the Go
module proxy into `.cache/go/mod` as for franz-go's suite. The rskafka driver
is the crate compat/rust, pinned by its Cargo.lock and built by cargo into `.cache/rust-drivers`.
A build is a no-op while the binary is newer than every file it is built from, so
`python -m compat.install` is quick once it has run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from compat.harness import REPO_ROOT

GO_MODULE = REPO_ROOT / "compat" / "go"
RUST_CRATE = REPO_ROOT / "compat" / "rust"
RUST_TARGET = REPO_ROOT / ".cache" / "rust-drivers"
GO_CACHE = REPO_ROOT / ".cache" / "go"  # shared with franz-go's suite (compat.suite_franz_go)


@dataclass(frozen=True)
class NativeDriver:
    """A compiled driver: where its binary goes, what it is built from and how."""

    name: str
    toolchain: str  # "go" or "cargo"
    package: str  # the Go package directory in compat/go, or the crate's binary name

    @property
    def binary(self) -> Path:
        if self.toolchain == "go":
            return GO_CACHE / "drivers" / self.name
        return RUST_TARGET / "release" / self.package

    def sources(self) -> list[Path]:
        if self.toolchain == "go":
            return [GO_MODULE / "go.mod", GO_MODULE / "go.sum", *(GO_MODULE / "driver").glob("*.go"),
                    *(GO_MODULE / self.package).glob("*.go")]
        return [RUST_CRATE / "Cargo.toml", RUST_CRATE / "Cargo.lock", *(RUST_CRATE / "src").glob("*.rs")]

    def is_built(self) -> bool:
        binary = self.binary
        return binary.exists() and all(binary.stat().st_mtime >= source.stat().st_mtime for source in self.sources())

    def build(self) -> None:
        if self.is_built():
            return
        if shutil.which(self.toolchain) is None:
            raise RuntimeError(f"{self.toolchain} not found: the {self.name} driver is built with it")
        if self.toolchain == "go":
            from compat.suite_franz_go import go_env

            self.binary.parent.mkdir(parents=True, exist_ok=True)
            _run(["go", "build", "-o", str(self.binary), f"./{self.package}"], GO_MODULE, go_env())
        else:
            _run(["cargo", "build", "--release", "--locked", "--quiet"], RUST_CRATE, {"CARGO_TARGET_DIR": str(RUST_TARGET)})
        self.binary.touch()  # cargo and go keep an up-to-date binary's old mtime

    def version(self) -> str:
        """The client's version as the pins say it (go.mod, Cargo.lock)."""
        if self.toolchain == "go":
            module = {"sarama": "github.com/IBM/sarama", "kafkago": "github.com/segmentio/kafka-go",
                      "franz": "github.com/twmb/franz-go"}[self.package]
            match = re.search(rf"^(?:require )?\s*{re.escape(module)} (v\S+)", (GO_MODULE / "go.mod").read_text(), re.M)
        else:
            match = re.search(r'name = "rskafka"\nversion = "([^"]+)"', (RUST_CRATE / "Cargo.lock").read_text())
        if match is None:
            raise RuntimeError(f"no pinned version of {self.name}")
        return match[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, check=True)


SARAMA = NativeDriver("sarama", "go", "sarama")
KAFKA_GO = NativeDriver("kafka-go", "go", "kafkago")
FRANZ_GO = NativeDriver("franz-go", "go", "franz")
RSKAFKA = NativeDriver("rskafka", "cargo", "rskafka-driver")
DRIVERS = (SARAMA, KAFKA_GO, FRANZ_GO, RSKAFKA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.drivers.native", description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="build every driver whose toolchain is installed")
    args = parser.parse_args(argv)
    for driver in DRIVERS:
        if args.build:
            if shutil.which(driver.toolchain) is None:
                print(f"{driver.toolchain} not found: {driver.name} will be reported as not installed", file=sys.stderr)
                continue
            driver.build()
        print(f"{driver.name} {driver.version()}: {'built' if driver.is_built() else 'not built'} ({driver.binary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
