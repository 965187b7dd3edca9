"""Start-up time of the ``caltrain`` command: ``caltrain --help`` / ``--version`` / ``import caltrain``, this tree
against another revision (what a user had before), side by side.

Each command runs in a fresh interpreter, ``--repeat`` times, the variants interleaved round-robin so that a
change of machine load hits all of them alike; the table gives the median wall time and the ratio of the other
revision's median to this tree's. Reference rows: ``python -c pass`` (the interpreter's own start, the floor)
and ``python -c "import torch"`` (what the command no longer pays). Bytecode is compiled once into a private
cache before timing (``PYTHONPYCACHEPREFIX``), as an installed package has it; the ``-X importtime`` total of
``import caltrain.cli.main`` (median of 3) says where the time goes.

Run: ``PYTHONPATH=src python bench/cli_startup.py [--against REV] [--repeat 9] [--json PATH]``. ``--against``
exports ``src/`` of the revision (e.g. ``HEAD~3``, a commit before the lazy package root) with ``git archive``
into a temporary folder; without it only this tree is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (label, python arguments)
COMMANDS = (
    ("caltrain --help", ["-m", "caltrain", "--help"]),
    ("caltrain --version", ["-m", "caltrain", "--version"]),
    ("import caltrain", ["-c", "import caltrain"]),
)
REFERENCES = (
    ("python -c pass", ["-c", "pass"]),
    ("python -c 'import torch'", ["-c", "import torch"]),
)


def _env(src: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(src), PYTHONPYCACHEPREFIX=str(cache))
    return env


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _import_total_us(env: dict[str, str]) -> int:
    """Cumulative microseconds of ``import caltrain.cli.main`` reported by ``-X importtime``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import caltrain.cli.main"], env=env,
                          capture_output=True, text=True, check=True)
    for line in proc.stderr.splitlines():
        if line.rstrip().endswith("| caltrain.cli.main"):
            return int(line.split("|")[1])
    raise RuntimeError(f"no caltrain.cli.main line in -X importtime:\n{proc.stderr[-2000:]}")


def _export(rev: str, into: Path) -> Path:
    """``src/`` of git revision ``rev``, extracted under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data") if sys.version_info >= (3, 12) else tar.extractall(into)  # noqa: S202
    return into / "src"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", metavar="REV", help="git revision to compare with (default: none)")
    parser.add_argument("--repeat", type=int, default=9, help="runs of each command (median; default 9)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        tmp = Path(tmp)
        trees = {"this tree": ROOT / "src"}
        if args.against:
            trees[args.against] = _export(args.against, tmp / "against")
        envs = {name: _env(src, tmp / f"pycache-{i}") for i, (name, src) in enumerate(trees.items())}
        variants = [(name, label, cmd) for name in trees for label, cmd in COMMANDS]
        variants += [("reference", label, cmd) for label, cmd in REFERENCES]
        env_of = {**envs, "reference": envs["this tree"]}
        for name, _, cmd in variants:  # warm-up: bytecode compiled and cached, files in the page cache
            _run(cmd, env_of[name])
        load_before = os.getloadavg()
        times: dict[tuple[str, str], list[float]] = {(n, lab): [] for n, lab, _ in variants}
        for _ in range(args.repeat):
            for name, label, cmd in variants:
                times[(name, label)].append(_run(cmd, env_of[name]))
        imports = {name: statistics.median(_import_total_us(env) for _ in range(3)) for name, env in envs.items()}
        load_after = os.getloadavg()

    median = {key: statistics.median(v) for key, v in times.items()}
    import torch  # only for the machine line

    machine = (f"{_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"torch {torch.__version__}")
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    print(f"# caltrain start-up ({machine}; {load}; median of {args.repeat})\n")
    names = list(trees)
    header = "| command | " + " | ".join(f"{n} (s)" for n in names)
    header += " | ratio |" if len(names) > 1 else " |"
    print(header)
    print("|" + "---|" * (len(names) + 1 + (len(names) > 1)))
    for label, _ in COMMANDS:
        cells = [f"{median[(n, label)]:.3f}" for n in names]
        ratio = f" | {median[(names[1], label)] / median[(names[0], label)]:.1f}x" if len(names) > 1 else ""
        print(f"| `{label}` | " + " | ".join(cells) + ratio + " |")
    for label, _ in REFERENCES:
        print(f"| `{label}` (reference) | {median[('reference', label)]:.3f}" + " |" * len(names)
              + (" |" if len(names) > 1 else ""))
    print("\n`-X importtime` total of `import caltrain.cli.main`: "
          + ", ".join(f"{n} {imports[n] / 1000:.0f} ms" for n in names))
    result = {"machine": machine, "load_before": load_before, "load_after": load_after, "repeat": args.repeat,
              "median_s": {f"{n} | {lab}": v for (n, lab), v in median.items()}, "import_us": imports}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
