"""The check `train-generator --candidates` keeps its best by, run on generator files already trained.

    python examples/candidate_check.py PHOTOS GEN [GEN ...] [--json out.json]

PHOTOS is the folder the generators were trained on (any layout, no labels); each GEN is a
generator file of it (e.g. `label_free_benchmark.py` work folders' ``gen_B.safetensors``,
trained with different ``--seed``). Prints the check's trainer accuracy for each, beside the
originals', and which one `--candidates` would keep; compare with the true-label figures of
the same generators to see whether the check picks well.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from unlearnable.candidates import check_candidates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("gens", type=Path, nargs="+")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    start = time.perf_counter()
    check = check_candidates(a.photos, a.gens, torch.device("cpu"))
    print(check.labels)
    print(f"originals: {check.clean_accuracy:.2%} ({check.pictures} pictures, a fifth held out)")
    for i, (g, acc) in enumerate(zip(a.gens, check.accuracies)):
        print(f"{g}: {acc:.2%}" + ("  <- kept" if i == check.best else ""))
    minutes = (time.perf_counter() - start) / 60
    print(f"check: {minutes:.1f} minutes")
    if a.json:
        a.json.write_text(json.dumps({"gens": [str(g) for g in a.gens], "accuracies": check.accuracies,
                                      "clean": check.clean_accuracy, "best": check.best, "minutes": minutes}, indent=2))


if __name__ == "__main__":
    main()
