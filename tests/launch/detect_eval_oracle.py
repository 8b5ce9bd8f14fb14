"""Oracle for tests/launch/cli_detect_eval_test.sh: `psaq eval` on a detector against pycocotools.

usage: detect_eval_oracle.py GT_JSON RESULTS_JSON PSAQ_REPORT_JSON PSAQ_STDOUT

Runs pycocotools' COCOeval (bbox, then segm) on GT_JSON and the detections psaq wrote
(--detections_out), and checks against psaq's --json_out report:
  - all 24 numbers agree to TOLERANCE;
  - psaq's console output holds pycocotools' own summarize() lines, verbatim, under "bbox:" and
    "segm:";
  - the comparison is not vacuous: each type has a number > 0.
Prints the largest difference; exits 1 naming the first disagreement.
"""
import contextlib
import io
import json
import os
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

TOLERANCE = 1e-4
NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
KEYS = {"bbox": "box", "segm": "segm"}


def main():
    gt_path, dt_path, report_path, stdout_path = sys.argv[1:5]
    with open(report_path) as f:
        report = json.load(f)
    with open(stdout_path) as f:
        console = f.read()
    failures = []
    worst = 0.0
    for iou_type, key in KEYS.items():
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            gt = COCO(gt_path)
            dt = gt.loadRes(dt_path)
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
        lines = io.StringIO()
        with contextlib.redirect_stdout(lines):
            ev.summarize()
        for name, want in zip(NAMES, ev.stats):
            got = report[key][name]
            worst = max(worst, abs(got - want))
            if abs(got - want) > TOLERANCE:
                failures.append(f"{key} {name}: psaq {got!r}, pycocotools {want!r}")
        if max(ev.stats) <= 0:
            failures.append(f"{iou_type}: every number is <= 0, the comparison says nothing")
        block = f"{iou_type}:\n" + lines.getvalue()
        if block not in console:
            failures.append(f"{iou_type}: psaq's output lacks pycocotools' lines:\n{block}")
        print(iou_type, " ".join(repr(float(v)) for v in ev.stats))
    print(f"largest difference {worst:.3g} over 24 numbers")
    for failure in failures:
        print("MISMATCH", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
