"""Oracle for tests/model/data/coco_eval_test.cc: pycocotools' COCOeval on files.

usage: coco_eval_oracle.py GT_JSON RESULTS_JSON IOU_TYPE [--arrays] [--thresholds]

Prints to stdout (pycocotools' own messages are dropped), floats as repr (round-trip exact):
  stats <12 numbers of COCOeval.stats>
  precision <eval['precision'] in C order>       (with --arrays)
  recall <eval['recall'] in C order>             (with --arrays)
  iou_thresholds <params.iouThrs>                (with --thresholds)
  recall_thresholds <params.recThrs>             (with --thresholds)
An empty results array is evaluated as no detections (COCO.loadRes cannot load one).
"""
import contextlib
import copy
import json
import os
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def floats(values):
    return " ".join(repr(float(v)) for v in values)


def main():
    gt_path, dt_path, iou_type = sys.argv[1:4]
    flags = set(sys.argv[4:])
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        gt = COCO(gt_path)
        with open(dt_path) as f:
            results = json.load(f)
        if results:
            dt = gt.loadRes(dt_path)
        else:
            dt = COCO()
            dt.dataset = {"images": list(gt.dataset["images"]),
                          "categories": copy.deepcopy(gt.dataset["categories"]),
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    print("stats", floats(ev.stats))
    if "--arrays" in flags:
        print("precision", floats(ev.eval["precision"].ravel(order="C")))
        print("recall", floats(ev.eval["recall"].ravel(order="C")))
    if "--thresholds" in flags:
        print("iou_thresholds", floats(ev.params.iouThrs))
        print("recall_thresholds", floats(ev.params.recThrs))


if __name__ == "__main__":
    main()
