"""Mean and spread of `evaluate` reports over seeds, as a Markdown table.

    python examples/evaluate_table.py --originals probe_originals.json \
        --runs "no push" cl_0.probe.json cl_1.probe.json cl_2.probe.json \
        --runs "push" pu_0.probe.json pu_1.probe.json pu_2.probe.json

Each ``--runs LABEL FILE...`` is one setting: the reports (`evaluate --report`, or its
``--json`` output) of the same trainer on that setting's protected folders, one per seed.
``--originals`` is a report whose ``clean_accuracy`` (`evaluate --clean`) is the trainer's
figure on the originals; without it, the first report that has one gives it. Prints the
trainer's accuracy on the protected pictures (mean, then each seed), on the originals, the
protection in points and the spread (largest minus smallest protected accuracy), so the
docs' figures come from their reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchlib import add_runs_option, seed_cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runs_option(ap, "the evaluate reports")
    ap.add_argument("--originals", type=Path, default=None, help="a report with the originals' figure (--clean)")
    a = ap.parse_args()
    reports = {label: [json.loads(Path(f).read_text()) for f in files] for label, *files in a.runs}
    sources = [json.loads(a.originals.read_text())] if a.originals else [r for rs in reports.values() for r in rs]
    clean = next((r["clean_accuracy"] for r in sources if r.get("clean_accuracy") is not None), None)
    if clean is None:
        raise SystemExit("no report has the originals' figure: give --originals REPORT (made with --clean)")
    print("| setting | seeds | trainer's accuracy, protected: mean (each seed) | originals | protection | spread |")
    print("|---|---|---|---|---|---|")
    for label, runs in reports.items():
        print(f"| {label} | {len(runs)} | {seed_cells([r['accuracy'] for r in runs], clean)}")


if __name__ == "__main__":
    main()
