"""``hub export``: the click command. Only click is imported here, so the CLI stays fast to start."""
from __future__ import annotations

import click

from hub.cli_types import FiniteFloat
from hub.export.gates import DEFAULT_MIN_AGREEMENT, DEFAULT_MIN_COSINE
from hub.runtimes import EXPORT_FORMATS


@click.command("export")
@click.argument("model_id")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="onnx (ONNX Runtime; OpenVINO reads it too) or openvino (OpenVINO IR).")
@click.option("--out", required=True, type=click.Path(), metavar="DIR",
              help="A new or empty directory for the exported model (written beside, then renamed into place).")
@click.option("--int8", is_flag=True, help="Quantize to int8 with the runtime's own quantizer (kept only if it passes "
                                           "the gate).")
@click.option("--calibration", type=click.Path(), metavar="DATA",
              help="Inputs for static int8 calibration: a text file (one text, or one image path, per line) or a "
                   "directory of images. Default: the hub's shipped calibration set.")
@click.option("--task", help="Export the model for another task of the same modality.")
@click.option("--min-cosine", type=FiniteFloat(-1, 1.0000001), default=DEFAULT_MIN_COSINE, show_default=True,
              help="Gate: the lowest cosine to the fp32 torch model's embeddings on held-out inputs.")
@click.option("--min-agreement", type=FiniteFloat(0, 1), default=DEFAULT_MIN_AGREEMENT, show_default=True,
              help="Gate: the lowest share of held-out inputs whose top-1 label matches the fp32 torch model's.")
@click.option("--trust-remote-code", is_flag=True, help="Allow code shipped with the weights to run.")
def export_cmd(model_id, fmt, out, int8, calibration, task, min_cosine, min_agreement, trust_remote_code):
    """Export MODEL_ID to ONNX or OpenVINO as a self-contained model directory, measured against fp32 torch.

    The directory holds the graph(s), the tokenizer / preprocessing config, labels and an mmhub.yaml with
    the measured quality, so 'hub run DIR', 'hub info DIR' and 'hub serve --model DIR' use it as a model.
    """
    from hub.export.api import export
    from hub.export.gates import Gates, summary

    info = export(model_id, fmt, out, int8=int8, calibration=calibration, task=task,
                  gates=Gates(min_cosine, min_agreement), trust_remote_code=trust_remote_code)
    click.echo(f"exported {model_id} to {out} ({fmt}, {info['precision']}, {info['runtime']})")
    click.echo(f"quality against fp32 torch: {summary(info['quality'])}")
