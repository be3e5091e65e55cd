#!/usr/bin/env python3
"""A sweep's CSV (docs/sweeps.md: best.csv or summary.csv) as a markdown
table for the README: one row per value of --rows, one column per value of
--cols, each cell the --metric of that run (with the learning rate that won
when the CSV is a best.csv), rows in the CSV's order.

    python3 tools/sweep_table.py runs/sweeps/mqar_L64/best.csv \\
        --rows mixer --cols d_model --metric test_accuracy

A cell with no finished run reads "-"; a run that failed reads "failed".
"""
import argparse
import csv
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--rows", default="mixer")
    ap.add_argument("--cols", default="d_model")
    ap.add_argument("--metric", default="test_accuracy")
    ap.add_argument("--digits", type=int, default=3)
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        runs = list(csv.DictReader(f))
    if not runs:
        sys.exit(f"{args.csv}: no runs")
    for key in (args.rows, args.cols, args.metric):
        if key not in runs[0]:
            sys.exit(f"{args.csv}: no column '{key}' (columns: {', '.join(runs[0])})")
    rows, cols, cell = [], [], {}
    for r in runs:
        if r[args.rows] not in rows:
            rows.append(r[args.rows])
        if r[args.cols] not in cols:
            cols.append(r[args.cols])
        status = r.get("status", "done")
        if status != "done":
            text = "failed" if status == "failed" else "-"
        elif r[args.metric] in ("", "null"):
            text = "-"
        else:
            text = f"{float(r[args.metric]):.{args.digits}f}"
            if "best_of" in r and "lr" in r:
                text += f" (lr {float(r['lr']):g})"
        cell[r[args.rows], r[args.cols]] = text
    print(f"| {args.rows} | " + " | ".join(f"{args.cols} {c}" for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for row in rows:
        print(f"| {row} | " + " | ".join(cell.get((row, c), "-") for c in cols) + " |")


if __name__ == "__main__":
    main()
