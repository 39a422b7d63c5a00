"""Trained models on disk: a weights file, a JSON manifest next to it, and atomic writes.

A checkpoint is two files:

* ``NAME.pt`` -- a ``torch.save`` dictionary: the model's ``state_dict`` and, for training runs,
  everything needed to resume exactly (optimizer state, the data generator's and torch's RNG
  states, loop counters). Loaded with ``torch.load(weights_only=True)``: no pickled code.
* ``NAME.json`` -- the manifest: the model kind and its config as a dict, the task, the seed,
  how many training sequences it has seen, the package version, the sha256 of ``NAME.pt``, the
  metrics it reached, the training recipe and the exact command line that produced it.

Every file is written atomically: to a temporary file in the same directory, flushed and
fsync'ed, then moved over the target with ``os.replace``; a crash leaves either the old file
or the new one, never half of one. Loading checks the sha256 first (a corrupt or truncated file
fails with a message naming it), rebuilds the model from the manifest's config, and, given an
expected config, refuses a checkpoint whose config differs, listing the differing fields.

A *shipped* checkpoint (``export_checkpoint``) keeps only the weights, optionally in float16,
so that the eight models of Part III fit in a few megabytes.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import neural_memory
from neural_memory.registry import MODEL_KINDS, build_model, model_classes

FORMAT_VERSION = 1
#: where the package's trained models live: ``<task>-<model>.pt`` + ``.json`` + ``.csv``
SHIPPED_DIR = Path(__file__).resolve().parent / "data" / "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not match what the caller expected."""


# --------------------------------------------------------------------------- configs as dicts


#: Manifest fields that say how a run was made, beyond its configs: the model preset and recipe
#: names, whether the fused unroll ran, and the number of torch threads (float rounding can depend
#: on it). An exported checkpoint keeps them.
RUN_ORIGIN = ("preset", "recipe", "fused", "threads")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A frozen config dataclass as a JSON-ready dict (tuples become lists)."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a config dataclass, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(kind: str, values: dict[str, Any]) -> Any:
    """Rebuild the config of a model kind from a manifest dict (lists back to tuples)."""
    config_cls, _ = model_classes(kind)
    return dataclass_from_dict(config_cls, values)


def dataclass_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass (a model config, a recipe) from a manifest dict (lists back
    to tuples); a field this version does not have is a CheckpointError."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CheckpointError(
            f"the manifest's {cls.__name__} has fields this version does not know: "
            f"{unknown} (written by another version of neural_memory?)"
        )
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def config_differences(found: Any, expected: Any) -> list[str]:
    """Human-readable ``field: checkpoint=..., expected=...`` lines for differing fields."""
    if type(found) is not type(expected):
        return [f"config type: checkpoint={type(found).__name__}, expected={type(expected).__name__}"]
    a, b = dataclasses.asdict(found), dataclasses.asdict(expected)
    return [f"{k}: checkpoint={a[k]!r}, expected={b[k]!r}" for k in a if a[k] != b[k]]


# --------------------------------------------------------------------------- atomic files


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a whole CSV file atomically (the training log is rewritten at every log step)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts keyed by the header."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(path: str | Path) -> Path:
    """The manifest that goes with a weights file: ``x.pt`` -> ``x.json``."""
    return Path(path).with_suffix(".json")


def shipped_checkpoint(task: str, model_kind: str, directory: str | Path | None = None) -> Path:
    """The path of the checkpoint shipped for ``task`` and ``model_kind``; a clear error if absent."""
    directory = Path(directory) if directory is not None else SHIPPED_DIR
    path = directory / f"{task}-{model_kind}.pt"
    if not path.exists():
        raise CheckpointError(
            f"no shipped checkpoint for task {task!r} and model {model_kind!r} (looked for {path}). "
            f"Train one with\n  python -m neural_memory.train --task {task} --model {model_kind} "
            f"--out runs/{task}-{model_kind}\nand pass --checkpoint runs/{task}-{model_kind}/"
            f"{task}-{model_kind}.pt (or add --export {directory} to the train command to ship it)."
        )
    return path


# --------------------------------------------------------------------------- save / load


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (in eval mode), its config and manifest, and the
    rest of the saved state (``optimizer``, ``rng``, ``train_state`` when present)."""

    model: nn.Module
    config: Any
    manifest: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: Any,
    *,
    task: str,
    model_kind: str,
    seed: int | None,
    sequences_seen: int,
    metrics: dict[str, float] | None = None,
    optimizer_state: dict | None = None,
    train_config: Any = None,
    rng_state: dict[str, torch.Tensor] | None = None,
    train_state: dict[str, Any] | None = None,
    command: str | None = None,
    weights_dtype: torch.dtype | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` (weights and resume state) and its manifest ``path.with_suffix('.json')``.

    ``weights_dtype=torch.float16`` stores floating-point weights in half precision (for shipped
    models; never for a run that will be resumed). Returns the manifest's path.
    """
    path = Path(path)
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {model_kind!r}; expected one of {list(MODEL_KINDS)}")
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if weights_dtype is not None:
        state_dict = {
            k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in state_dict.items()
        }
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "model": state_dict}
    if optimizer_state is not None:
        payload["optimizer"] = optimizer_state
    if rng_state is not None:
        payload["rng"] = rng_state
    if train_state is not None:
        payload["train_state"] = train_state
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    manifest = {
        "format_version": FORMAT_VERSION,
        "weights_file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "task": task,
        "model_kind": model_kind,
        "config": config_to_dict(config),
        "seed": seed,
        "sequences_seen": int(sequences_seen),
        "package_version": neural_memory.__version__,
        "torch_version": torch.__version__,
        "weights_dtype": str(weights_dtype or next(iter(state_dict.values())).dtype).replace("torch.", ""),
        "resumable": optimizer_state is not None,
        "metrics": metrics or {},
        "train_config": config_to_dict(train_config) if train_config is not None else None,
        "command": command,
    }
    if extra_manifest:
        manifest.update(extra_manifest)
    return atomic_write_text(manifest_path(path), json.dumps(manifest, indent=2) + "\n")


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the checkpoint at ``path`` (``x.pt`` or ``x.json``)."""
    mpath = manifest_path(path)
    if not mpath.exists():
        raise CheckpointError(f"no manifest {mpath} next to checkpoint {Path(path).with_suffix('.pt')}")
    try:
        return json.loads(mpath.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"manifest {mpath} is not valid JSON ({err})") from err


def check_manifest_is_for(manifest: dict[str, Any], path: str | Path, *, task: str | None = None,
                          model_kind: str | None = None) -> None:
    """CheckpointError unless the manifest of ``path`` is for ``task`` and ``model_kind`` (each
    checked when given)."""
    for name, wanted in (("task", task), ("model_kind", model_kind)):
        if wanted is not None and manifest.get(name) != wanted:
            raise CheckpointError(
                f"checkpoint {path} is for {name}={manifest.get(name)!r}, expected {wanted!r}"
            )


def load_checkpoint(
    path: str | Path,
    expected_config: Any = None,
    *,
    task: str | None = None,
    model_kind: str | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Verify, rebuild and return the checkpoint at ``path``.

    Raises ``CheckpointError`` when a file is missing, the sha256 of the weights differs from
    the manifest's (corrupt or truncated), or the checkpoint's task, model kind or config differ
    from the expected ones.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    manifest = read_manifest(path)
    digest = sha256_file(path)
    if digest != manifest.get("sha256"):
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or truncated: its sha256 is {digest}, "
            f"but its manifest {manifest_path(path)} records {manifest.get('sha256')}"
        )
    check_manifest_is_for(manifest, path, task=task, model_kind=model_kind)
    config = config_from_dict(manifest["model_kind"], manifest["config"])
    if expected_config is not None:
        diff = config_differences(config, expected_config)
        if diff:
            raise CheckpointError(
                f"checkpoint {path} has a different config than expected: " + "; ".join(diff)
            )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # any unpickling failure means a bad file
        raise CheckpointError(f"checkpoint file {path} could not be read: {err}") from err
    model = build_model(manifest["model_kind"], config)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit a model built from its config: {err}") from err
    model.eval()
    state = {k: v for k, v in payload.items() if k not in ("model", "format_version")}
    return Checkpoint(model=model, config=config, manifest=manifest, state=state)


def export_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    weights_dtype: torch.dtype | None = torch.float16,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Copy a checkpoint as a shipped one: weights only (float16 by default), same manifest
    otherwise; ``metrics``, when given, replace the manifest's (measure them on the exported
    weights). Returns the new manifest's path."""
    ckpt = load_checkpoint(src)
    m = ckpt.manifest
    return save_checkpoint(
        dst,
        ckpt.model,
        ckpt.config,
        task=m["task"],
        model_kind=m["model_kind"],
        seed=m["seed"],
        sequences_seen=m["sequences_seen"],
        metrics=metrics if metrics is not None else m["metrics"],
        command=m.get("command"),
        weights_dtype=weights_dtype,
        extra_manifest={k: m[k] for k in ("train_config", *RUN_ORIGIN) if k in m},
    )
