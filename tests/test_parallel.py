"""Mesh sizes and the logical-axis rules on the real model's param tree (multi-process start-up: test_distributed)."""

from __future__ import annotations

import jax
import optax
import pytest
from jax.sharding import PartitionSpec as P

from jaxbert.config import get_preset
from jaxbert.model import logical_axes, param_shapes
from jaxbert.parallel import (
    LOGICAL_RULES,
    MeshError,
    create_mesh,
    data_parallel_size,
    fit_spec,
    like_params_shardings,
    resolve_mesh_shape,
    tree_shardings,
)


def test_mesh_shape_fills_the_minus_one_axis():
    assert resolve_mesh_shape({"data": -1, "fsdp": 1, "tensor": 1}, 8) == {"data": 8, "fsdp": 1, "tensor": 1}
    assert resolve_mesh_shape({"data": -1, "tensor": 2}, 8) == {"data": 4, "fsdp": 1, "tensor": 2}
    assert resolve_mesh_shape({"fsdp": 8}, 8) == {"data": 1, "fsdp": 8, "tensor": 1}


@pytest.mark.parametrize("spec, devices, field", [
    ({"data": -1, "tensor": 3}, 8, "config.mesh"),
    ({"data": 2, "fsdp": 2}, 8, "config.mesh"),
    ({"data": -1, "fsdp": -1}, 8, "config.mesh"),
    ({"model": 2}, 8, "config.mesh"),
    ({"data": 0}, 1, "config.mesh.data"),
])
def test_mesh_shape_errors_name_the_field(spec, devices, field):
    with pytest.raises(MeshError) as err:
        resolve_mesh_shape(spec, devices)
    message = str(err.value)
    assert message.startswith(field) and "\n" not in message


def test_single_device_mesh():
    mesh = create_mesh({"data": -1})
    assert mesh.axis_names == ("data", "fsdp", "tensor")
    assert data_parallel_size(mesh) == jax.device_count()


def test_rules_table_maps_model_names_as_documented():
    rules = dict(LOGICAL_RULES)
    assert rules["embed"] == rules["hidden"] == "fsdp"
    assert rules["mlp"] == rules["heads"] == rules["vocab"] == "tensor"
    assert rules["act_batch"] == ("data", "fsdp")
    assert rules["act_heads"] == rules["act_mlp"] == "tensor"


def test_every_logical_name_of_every_family_has_a_rule():
    names = set()
    for preset in ("bert-base", "roberta-base", "albert-base", "electra-small", "distilbert-base"):
        for spec in jax.tree_util.tree_leaves(logical_axes(get_preset(preset)), is_leaf=lambda x: isinstance(x, P)):
            names.update(n for n in spec if n is not None)
    assert names <= set(dict(LOGICAL_RULES)), names - set(dict(LOGICAL_RULES))


class _FakeMesh:
    """Only .shape is read by fit_spec."""

    shape = {"data": 2, "fsdp": 4, "tensor": 2}


def test_fit_spec_leaves_indivisible_dims_unsharded():
    # BERT's 30522-id vocabulary is not divisible by 4 or by 2 x 4; the hidden dim is.
    assert fit_spec(P("tensor", "fsdp"), (30522, 768), _FakeMesh()) == P("tensor", "fsdp")
    assert fit_spec(P("fsdp", None), (30522, 768), _FakeMesh()) == P(None, None)
    assert fit_spec(P(("data", "fsdp"), None), (16, 4), _FakeMesh()) == P(("data", "fsdp"), None)
    assert fit_spec(P(("data", "fsdp"), None), (12, 4), _FakeMesh()) == P(None, None)


def test_bert_param_shardings_follow_the_rules():
    cfg = get_preset("bert-base")
    mesh = create_mesh({"data": -1})
    shardings = tree_shardings(param_shapes(cfg), logical_axes(cfg), mesh)
    assert shardings["embeddings"]["word"]["embedding"].spec == P("tensor", "fsdp")
    assert shardings["encoder"]["layers"]["attention"]["query"]["kernel"].spec == P(None, "fsdp", "tensor", None)
    assert shardings["encoder"]["layers"]["ffn"]["output"]["kernel"].spec == P(None, "tensor", "fsdp")
    # One mesh axis is never used twice in one array: the MLM transform is [hidden, embed], embed wins.
    assert shardings["mlm_head"]["transform"]["kernel"].spec == P(None, "fsdp")


def test_optimizer_moments_are_sharded_like_their_params():
    cfg = get_preset("bert-tiny")
    mesh = create_mesh({"data": -1})
    params = param_shapes(cfg)
    param_sh = tree_shardings(params, logical_axes(cfg), mesh)
    opt_shapes = jax.eval_shape(optax.adamw(1e-3).init, params)
    opt_sh = like_params_shardings(opt_shapes, params, param_sh, mesh)
    adam = opt_sh[0]
    assert adam.mu["embeddings"]["word"]["embedding"] == param_sh["embeddings"]["word"]["embedding"]
    assert adam.nu["encoder"]["layers"]["ffn"]["intermediate"]["kernel"].spec == P(None, "fsdp", "tensor")
    assert adam.count.spec == P()


def test_fit_spec_handles_scalars():
    assert fit_spec(P(), (), _FakeMesh()) == P()
