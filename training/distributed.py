"""LoRA runs on several GPUs: the run's ``gpus`` setting (0: all the worker's, ``AEGIS_WORKER_GPUS``,
else every visible GPU) picks one process per GPU, launched as a ``torchrun`` subprocess of the
worker; transformers' Trainer (through accelerate) then trains data-parallel (DDP; ``fsdp`` shards
the base across the GPUs for a base that does not fit one). The worker keeps the run's progress,
cancel, checkpoints and resume as in one process: the launched processes write progress to a
file the worker reads, the worker answers a cancel with a file that rank 0 reads and passes to
every rank, and checkpoints go to the run's folder, where a relaunch resumes.

One process (one GPU, or none) trains in the worker itself. On a CPU, ``processes`` runs DDP with
the gloo backend (how the tests check that two processes learn what one does)."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .trainers.common import ProgressReporter, TrainingError
from .trainers.lora import LoraSettings, train_lora

POLL_SECONDS = 1.0


def worker_gpus() -> int:
    """GPUs this worker may use: ``AEGIS_WORKER_GPUS``, else every GPU torch sees."""
    if os.environ.get("AEGIS_WORKER_GPUS"):
        return int(os.environ["AEGIS_WORKER_GPUS"])
    import torch

    return torch.cuda.device_count()


def process_count(settings: LoraSettings) -> int:
    """Processes for a run: its ``gpus`` (0: all the worker's), at most the worker's GPUs."""
    available = worker_gpus()
    if settings.gpus > available > 0:
        raise TrainingError(f"the run asks for {settings.gpus} GPUs; this worker has {available} (AEGIS_WORKER_GPUS)")
    return settings.gpus or available or 1


def train_lora_run(
    base_model: str,
    train: list[dict],
    validation: list[dict],
    output: Path,
    settings: LoraSettings,
    report: ProgressReporter,
    *,
    processes: int | None = None,
) -> dict[str, Any]:
    """``train_lora`` in this process, or in ``processes`` launched ones (default: from the run's
    and the worker's GPUs)."""
    processes = processes or process_count(settings)
    if processes <= 1:
        return train_lora(base_model, train, validation, output, settings, report)
    return _launch(base_model, train, validation, output, settings, report, processes)


def _write_json(path: Path, data: Any) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, path)


def _launch(base_model, train, validation, output: Path, settings, report, processes: int) -> dict[str, Any]:
    folder = output / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("progress.json", "cancel", "metrics.json"):
        (folder / name).unlink(missing_ok=True)
    _write_json(folder / "inputs.json", {"base_model": base_model, "train": train, "validation": validation,
                                         "settings": asdict(settings)})  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "training.distributed", str(output)]  # fmt: skip
    with (folder / "log.txt").open("w", encoding="utf-8") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        try:
            while child.poll() is None:
                time.sleep(POLL_SECONDS)
                _relay_progress(folder, report)
        except BaseException:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            raise
    _relay_progress(folder, report)
    if child.returncode != 0 or not (folder / "metrics.json").exists():
        tail = (folder / "log.txt").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise TrainingError(f"the {processes} training processes failed (exit {child.returncode}): {tail}")
    return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))


def _relay_progress(folder: Path, report: ProgressReporter) -> None:
    """Passes the launched run's latest progress to the worker's reporter; a cancel goes back."""
    try:
        progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return
    if report(progress["step"], progress["total"], progress["loss"], progress["eta"]):
        (folder / "cancel").touch()


def _launched_reporter(folder: Path) -> ProgressReporter:
    """In a launched process: rank 0 writes progress and reads the cancel file; every rank gets
    the same answer (a broadcast), so that all stop at the same step."""
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))

    def report(step: int, total: int, loss: float | None, eta: float | None) -> bool:
        stop = 0
        if rank == 0:
            _write_json(folder / "progress.json", {"step": step, "total": total, "loss": loss, "eta": eta})
            stop = int((folder / "cancel").exists())
        if dist.is_available() and dist.is_initialized():
            device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
            flag = torch.tensor([stop], device=device)
            dist.broadcast(flag, src=0)
            stop = int(flag.item())
        return bool(stop)

    return report


def main(output: str) -> None:
    """One launched process (``torchrun -m training.distributed OUTPUT``)."""
    folder = Path(output) / "launch"
    inputs = json.loads((folder / "inputs.json").read_text(encoding="utf-8"))
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in inputs["settings"].items()}
    metrics = train_lora(inputs["base_model"], inputs["train"], inputs["validation"], Path(output),
                         LoraSettings(**values), _launched_reporter(folder))  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        _write_json(folder / "metrics.json", metrics)
    _leave_process_group()


def _leave_process_group() -> None:
    """Every rank waits for the others, then tears the group down in order: left to interpreter
    exit, a rank's gloo group could outlive its peers' and abort the process (SIGABRT) after the
    training itself had finished."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
