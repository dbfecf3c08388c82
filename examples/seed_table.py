"""Mean and spread over seeds of `label_free_benchmark.py` runs, as a Markdown table.

    python examples/seed_table.py --runs "K = 10" s0.json s1.json s2.json --runs "K = 30" k30_0.json k30_1.json k30_2.json

Each ``--runs LABEL FILE...`` is one setting measured with several seeds (the ``--json`` of
`label_free_benchmark.py`); every case in those files becomes a row: the trainer's accuracy on
the protected pictures and on the originals (mean over the seeds, then each seed), the
protection in points, and the spread (largest minus smallest protected accuracy). The docs'
screening tables are printed by this script, so a figure and its runs cannot drift apart.
A setting whose runs were all made with ``--no-clean`` takes the originals' figure of the same
case from an earlier setting in the same call (the originals do not depend on the setting:
give those runs the same pictures), and the table says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchlib import add_runs_option, seed_cells


def rows_of(label: str, files: list[Path]) -> list[dict]:
    runs = [json.loads(f.read_text())["rows"] for f in files]
    out = []
    for case in [r["case"] for r in runs[0]]:
        got = [next(r for r in rows if r["case"] == case) for rows in runs]
        prot = [r["protected_accuracy"] for r in got]
        clean = [r["clean_accuracy"] for r in got if r["clean_accuracy"] is not None]  # runs with --no-clean have none
        out.append({"setting": label, "case": case, "seeds": len(got), "protected": prot, "clean": clean,
                    "protected_mean": sum(prot) / len(prot), "clean_mean": sum(clean) / len(clean) if clean else None,
                    "spread": max(prot) - min(prot),
                    "generator_minutes": [r["generator_minutes"] for r in got]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runs_option(ap, "the JSON files")
    ap.add_argument("--json", type=Path, default=None, help="also write the table's figures here")
    a = ap.parse_args()
    table = [row for label, *files in a.runs for row in rows_of(label, [Path(f) for f in files])]
    for r in table:
        if r["clean_mean"] is None:  # --no-clean runs: the originals' figure of an earlier setting
            earlier = next((e for e in table if e["case"] == r["case"] and e["clean"]), None)
            if earlier is None:
                raise SystemExit(f"{r['setting']}, case {r['case']}: no run has the originals' figure; "
                                 "give a setting measured without --no-clean first")
            r["clean_mean"], r["clean_from"] = earlier["clean_mean"], earlier["setting"]
    print("| setting | case | seeds | trainer's accuracy, protected: mean (each seed) | originals: mean | "
          "protection | spread |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['setting']} | {r['case']} | {r['seeds']} | {seed_cells(r['protected'], r['clean_mean'])}")
    for r in table:
        if "clean_from" in r:
            print(f"\n{r['setting']}, case {r['case']}: the originals' figure is that of {r['clean_from']}.")
    if a.json:
        a.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
