"""The pre-step memory check: a compiled step larger than the device's memory stops in one line, before step 1."""

from __future__ import annotations

import pytest
from train_stub import Regression, data_stream, train_config

from jaxbert.train import memory
from jaxbert.train.loop import train
from jaxbert.train.memory import (
    DeviceMemoryError,
    check_fits_devices,
    parse_memory_refusal,
    per_device_bytes,
    refusal_error,
)
from jaxbert.train.metrics import read_metrics

ANALYSIS = {"argument_size_in_bytes": 6 * 2**30, "output_size_in_bytes": 6 * 2**30, "alias_size_in_bytes": 6 * 2**30,
            "temp_size_in_bytes": 3 * 2**30, "generated_code_size_in_bytes": 2**20}


class StandinDevice:
    """A device whose memory_stats() reports `limit` bytes, as a TPU or GPU device does."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit

    def memory_stats(self):
        return None if self.limit is None else {"bytes_limit": self.limit, "bytes_in_use": 0}


def test_per_device_total_counts_donated_outputs_once():
    assert per_device_bytes(ANALYSIS) == {"arguments": 6 * 2**30, "outputs": 6 * 2**30, "temporaries": 3 * 2**30,
                                          "total": 9 * 2**30 + 2**20}


def test_a_step_larger_than_the_device_stops_in_one_line_naming_the_knobs():
    with pytest.raises(DeviceMemoryError) as info:
        check_fits_devices(ANALYSIS, [StandinDevice(16 * 2**30), StandinDevice(8 * 2**30)])
    message = str(info.value)
    assert "\n" not in message
    assert "needs 9.00 GiB per device but 8.00 GiB are available" in message
    for knob in ("train.batch_size", "model.remat", "mesh.fsdp"):
        assert knob in message
    assert info.value.needed == 9 * 2**30 + 2**20 and info.value.available == 8 * 2**30


def test_a_fitting_step_and_devices_without_a_limit_pass():
    check_fits_devices(ANALYSIS, [StandinDevice(16 * 2**30)])
    check_fits_devices(ANALYSIS, [StandinDevice(None)])  # CPU: memory_stats() is None
    check_fits_devices({}, [StandinDevice(1)])  # no memory analysis on this backend


def test_the_tpu_compilers_refusal_becomes_needed_and_available_bytes():
    text = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO temporaries (34.00G) "
            "exceeds available HBM (15.75G).")
    assert parse_memory_refusal(text) == (34 * 2**30, int(15.75 * 2**30))
    err = refusal_error(text)
    assert "needs 34.00 GiB per device but 15.75 GiB are available" in str(err) and "\n" not in str(err)
    assert refusal_error("INVALID_ARGUMENT: something else") is None


def test_the_loop_stops_before_step_one_when_the_step_does_not_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "device_memory_limit", lambda device: 1024)  # a stand-in 1 KiB device
    with pytest.raises(DeviceMemoryError, match="per device but .* are available"):
        train(train_config(steps=4), tmp_path, Regression(), data_stream(8))
    assert not [r for r in read_metrics(tmp_path) if "loss" in r]
