"""Will the train step fit a device's memory? Asked of the compiler before the first step runs.

The compiler's `memory_analysis()` gives per-device bytes of a compiled step; the TPU compiler also
refuses outright a program larger than the chip's HBM (RESOURCE_EXHAUSTED). Either way the run stops
with one line naming the bytes needed, the bytes available and the knobs that shrink a step, instead
of an out-of-memory crash minutes later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jaxbert.errors import JaxbertError

KNOBS = ("lower train.batch_size (or keep it and raise train.grad_accum), set model.remat=full (or dots), "
         "or shard params and optimizer state with mesh.fsdp=N")


class DeviceMemoryError(JaxbertError):
    """The compiled step needs more memory per device than the device has."""

    def __init__(self, message: str, needed: int | None = None, available: int | None = None) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def per_device_bytes(memory: Mapping[str, int]) -> dict[str, int]:
    """{arguments, outputs, temporaries, total} from a compiled step's memory analysis.

    Outputs that alias donated arguments (the new train state written over the old) are counted once.
    """
    args = int(memory.get("argument_size_in_bytes", 0))
    outs = int(memory.get("output_size_in_bytes", 0))
    temps = int(memory.get("temp_size_in_bytes", 0))
    alias = int(memory.get("alias_size_in_bytes", 0))
    code = int(memory.get("generated_code_size_in_bytes", 0))
    return {"arguments": args, "outputs": outs, "temporaries": temps, "total": args + outs - alias + temps + code}


# The TPU compiler's refusals, e.g. "RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory
# required for HLO temporaries (34.00G) exceeds available HBM (15.75G)." or "... Used 20.5G of 15.75G hbm".
_SIZE = r"([\d.]+)\s*([KMGT])i?B?"
_REFUSALS = (re.compile(rf"\({_SIZE}\)\s*exceeds available HBM\s*\({_SIZE}\)"),
             re.compile(rf"Used\s+{_SIZE}\s+of\s+{_SIZE}\s+hbm", re.IGNORECASE))
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory_refusal(message: str) -> tuple[int | None, int | None] | None:
    """(bytes needed, bytes available) from a compiler's out-of-memory error, or None if it is not one."""
    if "RESOURCE_EXHAUSTED" not in message and "Ran out of memory" not in message:
        return None
    for pattern in _REFUSALS:
        if m := pattern.search(message):
            needed = int(float(m.group(1)) * _UNITS[m.group(2)])
            return needed, int(float(m.group(3)) * _UNITS[m.group(4)])
    return (None, None) if "memory" in message.lower() else None


def refusal_error(message: str, what: str = "the train step") -> DeviceMemoryError | None:
    """A DeviceMemoryError for a compiler's out-of-memory refusal, or None for any other error."""
    parsed = parse_memory_refusal(message)
    if parsed is None:
        return None
    needed, available = parsed
    if needed is not None and available is not None:
        amounts = f"needs {gib(needed)} per device but {gib(available)} are available"
    else:
        amounts = f"does not fit in device memory ({message.splitlines()[0][:200]})"
    return DeviceMemoryError(f"{what} {amounts} (the compiler refused it); {KNOBS}", needed, available)


def device_memory_limit(device: Any) -> int | None:
    """Bytes a device offers (memory_stats()['bytes_limit']), or None where the backend does not say (CPU)."""
    try:
        stats = device.memory_stats()
    except Exception:  # compile-only and some host devices raise instead of returning None
        return None
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"])


def check_fits_devices(memory: Mapping[str, int], devices: Iterable[Any], what: str = "the train step") -> None:
    """Raise a one-line DeviceMemoryError when the compiled step's per-device total exceeds the smallest
    device's memory limit; silent where the compiler gave no analysis or the devices report no limit."""
    if not memory:
        return
    limits = [limit for limit in (device_memory_limit(d) for d in devices) if limit is not None]
    if not limits:
        return
    needed, available = per_device_bytes(memory)["total"], min(limits)
    if needed > available:
        raise DeviceMemoryError(f"{what} needs {gib(needed)} per device but {gib(available)} are available; "
                                f"{KNOBS}", needed, available)
