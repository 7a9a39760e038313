"""The training parameters are listed once (TrainConfig): hub finetune's options and finetune()'s keywords are made
from its fields, and a bad value is refused by name through either."""
from __future__ import annotations

import inspect
import math

import click
import pytest

from hub.errors import HubError
from hub.train.api import finetune
from hub.train.commands import eval_cmd, finetune_cmd
from hub.train.config import TrainConfig, config_fields, make_config, value_type

FIELDS = config_fields()
ON_CLI = [name for name, f in FIELDS.items() if f.metadata["cli"]]
RUN_OPTIONS = {"model_id", "data", "val", "task", "out", "resume", "overwrite", "nproc", "on_bad_rows", "text_column",
               "label_column"}  # where the data and the run directory are, not how the model is trained


def options(command: click.Command) -> dict[str, click.Parameter]:
    return {param.name: param for param in command.params}


def test_every_field_has_help_and_a_checked_default():
    for name, f in FIELDS.items():
        assert f.metadata["help"].strip(), name
    TrainConfig().check()  # every default is a value the field takes
    assert TrainConfig().lr is None  # the kind's default, filled in by finetune


def test_hub_finetunes_options_are_the_run_options_and_the_fields():
    found = options(finetune_cmd)
    assert set(found) == RUN_OPTIONS | set(ON_CLI)
    assert [name for name in found if name in FIELDS] == ON_CLI  # in the fields' order
    for name in ON_CLI:
        f, param = FIELDS[name], found[name]
        assert param.default == f.default and param.help == f.metadata["help"], name
        assert param.opts[0] == "--" + name.replace("_", "-")
        kind, _ = value_type(f)
        if f.metadata["choices"]:
            assert tuple(param.type.choices) == f.metadata["choices"]
        assert (kind is bool) == param.is_flag, name


def test_hub_evals_batch_size_and_precision_are_the_fields():
    found = options(eval_cmd)
    for name in ("batch_size", "precision"):
        assert found[name].default == FIELDS[name].default and found[name].help == FIELDS[name].metadata["help"]
    assert tuple(found["precision"].type.choices) == FIELDS["precision"].metadata["choices"]


def test_finetunes_signature_names_every_field_with_its_default():
    params = inspect.signature(finetune).parameters
    named = {name: p for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert list(named) == list(FIELDS)
    assert all(named[name].default == f.default for name, f in FIELDS.items())
    assert set(params) - set(named) == RUN_OPTIONS - {"nproc"} | {"val_fraction"}


def bad_values(name: str) -> list:
    """Values field ``name`` refuses: of another type, and out of its bounds or choices."""
    f = FIELDS[name]
    kind, optional = value_type(f)
    out = [[1]] + ([] if optional else [None])
    out += {bool: ["yes", 1], int: [1.5, "3", True], float: ["0.1", math.nan, math.inf], str: [3, b"x"]}[kind]
    low = f.metadata["low"]
    if low is not None:
        out.append(low if f.metadata["open_low"] else low - 1)
    if f.metadata["choices"]:
        out.append("no-such-choice")
    return out


CASES = [(name, value) for name in FIELDS for value in bad_values(name)]


@pytest.mark.parametrize("name, value", CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_finetune_refuses_a_bad_value_by_name_before_reading_anything(name, value, tmp_path):
    with pytest.raises(HubError) as caught:
        finetune("no-such-model", tmp_path / "no-such-data", out=tmp_path / "out", **{name: value})
    assert str(caught.value).startswith(f"{name} must be"), str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given, close", [({"epoch": 2}, "epochs"), ({"learning_rate": 1e-3}, None),
                                          ({"batchsize": 8}, "batch_size"), ({"val_frac": 0.1}, None)])
def test_finetune_refuses_an_unknown_parameter_listing_the_fields(given, close, tmp_path):
    with pytest.raises(HubError) as caught:
        finetune("no-such-model", tmp_path / "data", out=tmp_path / "out", **given)
    message = str(caught.value)
    assert f"'{next(iter(given))}'" in message and all(name in message for name in FIELDS)
    assert (f"Did you mean: {close}?" in message) if close else "Did you mean" not in message


def cli_bad_value(name: str) -> str | None:
    f = FIELDS[name]
    kind, _ = value_type(f)
    if kind is bool:
        return None
    if f.metadata["choices"]:
        return "no-such-choice"
    if kind is str:
        return None  # any text is a text; its meaning is checked later (an unknown metric, device)
    low = f.metadata["low"]
    return "lots" if low is None else f"{low if f.metadata['open_low'] else low - 1:g}"


@pytest.mark.parametrize("name", [n for n in ON_CLI if cli_bad_value(n) is not None])
def test_hub_finetune_refuses_a_bad_value_in_one_line(name, cli_runner, tmp_path):
    from hub.cli import cli

    data = tmp_path / "data.csv"
    data.write_text("text,label\na,b\n")
    result = cli_runner.invoke(cli, ["finetune", "no-such-model", "--data", str(data), "--out", str(tmp_path / "o"),
                                     "--" + name.replace("_", "-"), cli_bad_value(name)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "--" + name.replace("_", "-") in result.output and not (tmp_path / "o").exists()


def test_make_config_keeps_what_is_given():
    config = make_config({"epochs": 2, "lr": 1e-3, "warmup": 0, "max_grad_norm": None, "precision": "fp32"})
    assert (config.epochs, config.lr, config.warmup, config.max_grad_norm, config.precision) == (2, 1e-3, 0, None,
                                                                                                 "fp32")
    assert make_config({}) == TrainConfig()


def test_the_training_guide_lists_exactly_the_training_options():
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "training.md").read_text(encoding="utf-8")
    listed = page.split("one option per training\nparameter:", 1)[1].split("(`hub finetune --help`", 1)[0]
    assert set(re.findall(r"`--([a-z-]+)", listed)) == {name.replace("_", "-") for name in ON_CLI}
