"""pycocotools oracle for tests/model/data/coco_mask_test.cc.

Usage: coco_mask_oracle.py <cases.json>. Reads the cases the test wrote and prints one JSON object
with pycocotools' answers:
  masks[i]   {"string", "runs", "area", "bbox"} of encode(mask); runs are counted here with numpy
             from the mask in column-major order (independent of pycocotools' string form)
  polys[i]   the same for merge(frPyObjects(polygons, h, w)) (as COCO.annToRLE), runs counted
             from decode()
  boxes[i]   the same for frPyObjects([[x, y, w, h]], h, w)
  merges[i]  {"union", "intersection"} strings of merge over the listed masks
  ious[i]    iou(dt masks, gt masks, iscrowd) as a [D][G] list
  box_ious[i] iou(dt boxes, gt boxes, iscrowd)
  strings[i] runs of the given compressed string (frString via decode)
"""
import json
import sys

import numpy as np
from pycocotools import mask as mask_utils


def runs_of(mask):
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    if flat.size == 0:
        return [0]
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    return ([0] + runs) if flat[0] else runs


def describe(rle):
    decoded = mask_utils.decode(rle)
    return {
        "string": rle["counts"].decode("ascii"),
        "runs": [int(r) for r in runs_of(decoded)],
        "area": int(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
    }


def mask_array(case):
    bits = np.frombuffer(case["bits"].encode("ascii"), dtype=np.uint8) - ord("0")
    return np.asfortranarray(bits.reshape(case["h"], case["w"]))


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    rles = [mask_utils.encode(mask_array(c)) for c in cases["masks"]]
    out = {"masks": [describe(r) for r in rles], "polys": [], "boxes": [], "merges": [],
           "ious": [], "box_ious": [], "strings": []}
    for c in cases["polys"]:
        parts = mask_utils.frPyObjects(c["polygons"], c["h"], c["w"])
        out["polys"].append(describe(mask_utils.merge(parts)))
    for c in cases["boxes"]:
        out["boxes"].append(describe(mask_utils.frPyObjects(np.array([c["box"]], dtype=np.float64), c["h"], c["w"])[0]))
    for c in cases["merges"]:
        chosen = [rles[i] for i in c]
        out["merges"].append({
            "union": mask_utils.merge(chosen, intersect=False)["counts"].decode("ascii"),
            "intersection": mask_utils.merge(chosen, intersect=True)["counts"].decode("ascii"),
        })
    for c in cases["ious"]:
        dt = [rles[i] for i in c["dt"]]
        gt = [rles[i] for i in c["gt"]]
        iou = np.asarray(mask_utils.iou(dt, gt, [int(v) for v in c["iscrowd"]]), dtype=np.float64)
        out["ious"].append(iou.reshape(len(dt), len(gt)).tolist())
    for c in cases["box_ious"]:
        dt = np.asarray(c["dt"], dtype=np.float64).reshape(-1, 4)
        gt = np.asarray(c["gt"], dtype=np.float64).reshape(-1, 4)
        iou = np.asarray(mask_utils.iou(dt, gt, [int(v) for v in c["iscrowd"]]), dtype=np.float64)
        out["box_ious"].append(iou.reshape(len(dt), len(gt)).tolist())
    for c in cases["strings"]:
        rle = {"counts": c["string"].encode("ascii"), "size": [c["h"], c["w"]]}
        out["strings"].append([int(r) for r in runs_of(mask_utils.decode(rle))])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
