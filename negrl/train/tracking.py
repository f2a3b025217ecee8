"""Where the training metrics go: ``metrics.jsonl`` (the contract), TensorBoard event files, W&B (optional).

``metrics.jsonl`` holds one JSON object per rollout step (methods.md §5 keys) and is what every later stage
reads. TensorBoard scalars are written with a small built-in event-file writer (TFRecord framing, masked
CRC32C, ``Event``/``Summary`` protobufs encoded by hand), so no TensorBoard or protobuf install is needed
to write them; ``tensorboard --logdir results/<exp>/train`` reads them. Weights & Biases is used only when
``train.logging.wandb_project`` is set and ``wandb`` is importable (it is imported only then).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> w = EventFileWriter(d); w.add_scalars({"reward/mean": 0.5}, step=1); w.close()
    >>> [(tag, step, round(value, 3)) for tag, step, value in read_scalars(w.path)]
    [('reward/mean', 1, 0.5)]
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

# ------------------------------------------------------------------------------------------------
# TensorBoard event files (tensorflow/core/util/event.proto, summary.proto; TFRecord framing).


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None,
           scalars: dict[str, float] | None = None) -> bytes:
    """An ``Event`` message: wall_time (1, double), step (2, int64), file_version (3) or summary (5)."""
    out = bytes([1 << 3 | 1]) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(  # Summary.value (1): Value{tag (1), simple_value (2, float)}
            _field_bytes(1, _field_bytes(1, tag.encode()) + bytes([2 << 3 | 5]) + struct.pack("<f", value))
            for tag, value in scalars.items())
        out += _field_bytes(5, values)
    return out


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))


class EventFileWriter:
    """Appends scalar summaries to ``<logdir>/events.out.tfevents.<time>.<host>.<pid>``."""

    def __init__(self, logdir: str | Path) -> None:
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        self.path = logdir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._file = open(self.path, "ab")
        self._file.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def add_scalars(self, scalars: dict[str, float], step: int) -> None:
        finite = {k: float(v) for k, v in scalars.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if finite:
            self._file.write(_record(_event(time.time(), int(step), scalars=finite)))
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def read_scalars(path: str | Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in an event file, checking the record CRCs (for tests)."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != _masked_crc(header):
            raise ValueError("corrupt event file: header CRC")
        record = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] != _masked_crc(record):
            raise ValueError("corrupt event file: data CRC")
        pos += 16 + length
        step = 0
        for number, _, value in _fields(record):
            if number == 2:
                step = value
            elif number == 5:
                for _, _, entry in _fields(value):
                    fields = {n: v for n, _, v in _fields(entry)}
                    out.append((fields[1].decode(), step, struct.unpack("<f", fields[2])[0]))
    return out


# ------------------------------------------------------------------------------------------------
# The run's metric sinks.


class MetricsLogger:
    """Writes each rollout step's record to metrics.jsonl, TensorBoard and (optionally) W&B."""

    def __init__(self, metrics_path: Path, *, tensorboard_dir: Path | None = None,
                 wandb_project: str | None = None, wandb_entity: str | None = None, run_name: str = "",
                 config: dict | None = None) -> None:
        self.metrics_file = open(metrics_path, "a")
        self.tensorboard = EventFileWriter(tensorboard_dir) if tensorboard_dir is not None else None
        self.wandb = None
        if wandb_project:
            try:
                import wandb
            except ImportError:
                warnings.warn("train.logging.wandb_project is set but wandb is not installed: not logging to W&B",
                              stacklevel=2)
            else:
                self.wandb = wandb.init(project=wandb_project, entity=wandb_entity, name=run_name, config=config,
                                        id=run_name.replace("/", "-") or None, resume="allow")

    def log(self, record: dict[str, float], step: int) -> None:
        self.metrics_file.write(json.dumps(record, sort_keys=True) + "\n")
        self.metrics_file.flush()
        if self.tensorboard is not None:
            self.tensorboard.add_scalars(record, step)
        if self.wandb is not None:
            self.wandb.log(record, step=step)

    def close(self) -> None:
        self.metrics_file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
