#!/usr/bin/env python3
"""Reads a Finch run folder's TensorBoard event file with TensorBoard's own reader
(EventAccumulator) and requires it to say what metrics.jsonl and config.yaml say:

- every number of every metrics.jsonl row is the scalar of the same name at step = its "epoch"
  (as float32, how TensorBoard stores scalars), val/per_class_accuracy as
  val/per_class_accuracy/<class>; no epoch scalar without a row;
- step/train/loss and step/lr/<group> (each group of the lr/<group> columns) are logged;
- the text summary "config" is config.yaml (as an indented Markdown code block).

Usage: check_tensorboard.py RUN_FOLDER   (exit 0 and "ok: …" when everything matches)
Needs: pip install tensorboard numpy
"""
import glob
import json
import os
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator


def main(run):
    files = glob.glob(os.path.join(run, "events.out.tfevents.*"))
    if len(files) != 1:
        return [f"expected one event file in {run}, found {files}"]
    acc = event_accumulator.EventAccumulator(
        run, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0})
    acc.Reload()
    problems = []
    tags = acc.Tags()
    scalars = {t: {e.step: e.value for e in acc.Scalars(t)} for t in tags["scalars"]}

    expected = {}
    with open(os.path.join(run, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        epoch = row["epoch"]
        for key, value in row.items():
            if key == "epoch":
                continue
            if isinstance(value, dict):
                for name, v in value.items():
                    expected.setdefault(f"{key}/{name}", {})[epoch] = v
            else:
                expected.setdefault(key, {})[epoch] = value
    for tag, by_epoch in sorted(expected.items()):
        got = scalars.get(tag)
        if got is None:
            problems.append(f"{tag}: not in the event file")
            continue
        for epoch, value in sorted(by_epoch.items()):
            if epoch not in got:
                problems.append(f"{tag}: no value at step {epoch}")
            elif np.float32(got[epoch]) != np.float32(value):
                problems.append(f"{tag} at step {epoch}: TensorBoard {got[epoch]!r}, metrics.jsonl {value!r}")
        extra = sorted(set(got) - set(by_epoch))
        if extra:
            problems.append(f"{tag}: steps {extra} have no metrics.jsonl row")
    for tag in scalars:
        if not tag.startswith("step/") and tag not in expected:
            problems.append(f"{tag}: in the event file but not in metrics.jsonl")

    groups = {k[len("lr/"):] for k in expected if k.startswith("lr/")}
    wanted = ["step/train/loss"] + [f"step/lr/{g}" for g in sorted(groups)]
    for tag in wanted:
        if not scalars.get(tag):
            problems.append(f"{tag}: no per-step values")
    losses = list(scalars.get("step/train/loss", {}).values())
    if not all(np.isfinite(losses)):
        problems.append(f"step/train/loss: non-finite values {losses}")

    if "config" not in tags["tensors"]:
        problems.append("config: no text summary")
    else:
        events = acc.Tensors("config")
        text = events[0].tensor_proto.string_val[0].decode("utf-8")
        with open(os.path.join(run, "config.yaml")) as f:
            yaml = f.read()
        block = "\n".join("    " + line for line in yaml.split("\n"))
        if text != block:
            problems.append("config: the text summary is not config.yaml")
        meta = acc.SummaryMetadata("config")
        if meta.plugin_data.plugin_name != "text":
            problems.append(f"config: plugin {meta.plugin_data.plugin_name!r}, not 'text'")

    if not problems:
        n = sum(len(v) for v in expected.values())
        steps = len(scalars.get("step/train/loss", {}))
        print(f"ok: {n} epoch scalars equal metrics.jsonl over {len(rows)} epochs, {steps} step points, config text")
    return problems


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    found = main(sys.argv[1])
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
