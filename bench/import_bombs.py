"""Peak memory and time of the import reader on compression bombs (issue 15), one process each.

    .venv/bin/python bench/import_bombs.py

Builds each bomb by streaming into a temporary folder, then reads it in a fresh process with the
default ReadLimits and prints: bomb, compressed size, the error (file, line, limit), seconds,
and the process's peak RSS above its start (ru_maxrss).
"""

import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
READ = """
import resource, sys, time
sys.path.insert(0, {root!r})
from annotation.importing.errors import ImportDataError
from annotation.importing.readers import ReadLimits, read_records
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.monotonic()
try:
    for _ in read_records({path!r}, limits=ReadLimits()):
        pass
    outcome = "read whole (no limit hit)"
except ImportDataError as error:
    outcome = str(error)
seconds = time.monotonic() - began
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
print(f"{{outcome}} | {{seconds:.2f}} s | peak RSS +{{peak:.0f}} MiB")
"""


def bomb(path: Path, head: bytes, chunk: bytes, repeat: int, tail: bytes = b"") -> Path:
    with gzip.open(path, "wb", compresslevel=9) as stream:
        stream.write(head)
        for _ in range(repeat):
            stream.write(chunk)
        stream.write(tail)
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        bombs = [
            bomb(tmp / "one-300MB-line.jsonl.gz", b'{"prompt": "', b"a" * MiB, 300, b'"}\n'),
            bomb(tmp / "300M-blank-lines.jsonl.gz", b"", b"\n" * MiB, 286),
            bomb(tmp / "300MB-of-spaces-lines.csv.gz", b"prompt\n", (b" " * 1023 + b"\n") * 1024, 300),
        ]
        for path in bombs:
            code = READ.format(root=str(ROOT), path=str(path))
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            line = (result.stdout or result.stderr).strip().splitlines()[-1]
            print(f"{path.name} ({path.stat().st_size / 1024:.0f} KB): {line}")


if __name__ == "__main__":
    main()
