"""Pure Flax Linen modules of the BERT family (one code path, configured by ModelConfig) and of XLNet."""

from jaxbert.model.build import build_model
from jaxbert.model.model import EncoderModel, ModelOutput
from jaxbert.model.params import (
    check_params,
    count_params,
    init_params,
    logical_axes,
    param_shapes,
    scan_to_unrolled,
    unrolled_to_scan,
)

__all__ = ["EncoderModel", "ModelOutput", "build_model", "check_params", "count_params", "init_params",
           "logical_axes", "param_shapes", "scan_to_unrolled", "unrolled_to_scan"]
