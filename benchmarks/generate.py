"""Platform-size metadata for the benchmarks: the examples renamed many times, spread over files.

    python benchmarks/generate.py OUT_DIR --sources 10000 [--files N]

Each copy of ``examples/metadata_examples.yaml`` holds 17 sources in 6 modules (5 active jobs);
every module name and source id gets a ``_cNNNNN`` suffix so copies never collide (run_job and
depends_on references follow, being the same words). 10,000 sources give 588 copies: 9,996
sources, 3,528 modules, 2,940 jobs.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
SOURCES_PER_COPY = 17


def _split(text: str) -> tuple[str, str]:
    head, body = text.split("\nmodules:\n", 1)
    return head + "\nmodules:\n", body


def generate(out: Path, sources: int, files: int | None = None) -> list[Path]:
    """Write ``files`` YAML files holding about ``sources`` sources; returns their paths. By
    default 11 files, or more so that none nears the 1 MB file limit (about 55 copies a file)."""
    text = EXAMPLES.read_text()
    head, body = _split(text)
    names = sorted(
        set(re.findall(r"module_name: (\w+)", body)) | set(re.findall(r"source_id: (\w+)", body)),
        key=len,
        reverse=True,
    )
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    copies = max(1, sources // SOURCES_PER_COPY)
    if files is None:
        files = max(11, -(-copies // 55))
    out.mkdir(parents=True, exist_ok=True)
    per_file = -(-copies // files)
    paths = []
    for f in range(files):
        chunk = range(f * per_file, min(copies, (f + 1) * per_file))
        if not chunk:
            break
        parts = [pattern.sub(lambda m, c=c: f"{m.group(1)}_c{c:05d}", body) for c in chunk]
        path = out / f"team{f:02d}.yaml"
        path.write_text(head + "".join(parts))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=None)
    args = parser.parse_args()
    paths = generate(args.out, args.sources, args.files)
    print(f"wrote {len(paths)} files to {args.out}")


if __name__ == "__main__":
    main()
