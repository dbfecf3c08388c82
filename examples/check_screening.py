"""Does a check without labels rank generators the way the true labels do?

    python examples/check_screening.py mm_0 mm_1 mm_2 ... [--epochs 10] [--json check.json]

Each argument is a work folder of `label_free_benchmark.py --cases B` (its ``B_photos``,
``B_protected`` and ``B.evaluation.json``; made with different ``--train-args "--seed N"``,
so each holds another generator's protection of the same pictures). For every folder the
protection is measured again as an owner without labels could, with labels that know
nothing of the true classes, by `unlearnable evaluate PROTECTED --clean ORIGINALS --labels
CSV` (a held-out fifth to test on):

* ``clusters``: `evaluate --auto-labels clusters`'s labels (unlearnable.scraper_labels.cluster_labels:
  K-means, K = 10, on efficientnet-lite0's pooled features of the originals): another network
  than the keys' efficientnet-lite2, so the labels are not the keys;
* ``own keys``: the generator's own keys of the originals (the check shown not to predict).

It prints each folder's true-label protection (from its benchmark run) beside the checks'
and, for each check, Spearman's rank correlation with the true labels over the folders
(1: the same order). True labels are read only from the benchmark's own report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchlib import cli
from key_purity import purity

from unlearnable.data import load_pictures
from unlearnable.io.genfile import load_keys
from unlearnable.scraper_labels import cluster_labels


def write_csv(path: Path, paths: list[str], labels: list) -> None:
    path.write_text("".join(f"{p},c{int(k)}\n" for p, k in zip(paths, labels)))


def own_keys(photos: Path, gen: Path) -> tuple[list[str], torch.Tensor]:
    keys = load_keys(gen)
    data = load_pictures(photos, 32, labels="none", key_size=keys.config.image_size)
    return data.paths, keys(data.x_keys.float() / 255)


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        for pos, i in enumerate(order):
            r[i] = float(pos)
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den if den else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("works", type=Path, nargs="+", help="work folders of label_free_benchmark.py --cases B")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    proxy_csv = a.works[0] / "cluster_labels.csv"  # the same pictures under the same names in every folder
    labels, said = cluster_labels(a.works[0] / "B_photos", torch.device("cpu"))
    proxy_csv.write_text("".join(f"{rel}.jpg,{name.replace(' ', '_')}\n" for rel, name in labels.items()))
    truth = dict(line.split(",") for line in (a.works[0] / "B_labels.csv").read_text().split())
    classes, clusters = sorted(set(truth.values())), sorted(set(labels.values()))
    y = torch.tensor([classes.index(truth[f"{rel}.jpg"]) for rel in labels])  # to score the clusters only
    found = torch.tensor([clusters.index(name) for name in labels.values()])
    print(f"{said}; purity against the true classes {purity(found, y):.1%}")
    rows = []
    for work in a.works:
        true = json.loads((work / "B.evaluation.json").read_text())
        row = {"work": str(work), "true": [true["accuracy"], true["clean_accuracy"]]}
        own_csv = work / "own_keys.csv"
        write_csv(own_csv, *own_keys(work / "B_photos", work / "gen_B.safetensors"))
        for name, csv in (("clusters", proxy_csv), ("own keys", own_csv)):
            r = cli("evaluate", str(work / "B_protected"), "--clean", str(work / "B_photos"), "--labels", str(csv),
                    "--epochs", str(a.epochs), "--report", str(work / f"check_{name.replace(' ', '_')}.json"))
            row[name] = [r["accuracy"], r["clean_accuracy"]]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| generator | true labels: protected / originals (points) | cluster labels | own keys |")
    print("|---|---|---|---|")
    pts = lambda v: 100 * (v[1] - v[0])  # noqa: E731
    for r in rows:
        cells = [f"{100 * r[k][0]:.2f}% / {100 * r[k][1]:.2f}% ({pts(r[k]):.1f})" for k in ("true", "clusters", "own keys")]
        print(f"| {r['work']} | " + " | ".join(cells) + " |")
    corr = {k: spearman([pts(r["true"]) for r in rows], [pts(r[k]) for r in rows]) for k in ("clusters", "own keys")}
    print("Spearman's rank correlation with the true labels' protection: "
          + ", ".join(f"{k} {v:.2f}" for k, v in corr.items()))
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "spearman": corr}, indent=1))


if __name__ == "__main__":
    main()
