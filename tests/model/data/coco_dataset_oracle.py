"""pycocotools oracle for tests/model/data/coco_dataset_test.cc and the make-scenes tests.

Usage: coco_dataset_oracle.py <instances.json>. Loads the file with pycocotools' COCO and prints
one JSON object:
  num_images, num_annotations
  annotations  {"<id>": {"counts": compressed string of annToRLE, "mask_area": area of that mask,
                "mask_bbox": its toBbox, "label": index of category_id among the sorted
                category ids (mmdetection's cat2label), "area": the file's area, "bbox": the
                file's bbox}}
"""
import contextlib
import json
import sys

from pycocotools import mask as mask_utils
from pycocotools.coco import COCO


def main():
    with contextlib.redirect_stdout(sys.stderr):  # COCO() prints progress
        coco = COCO(sys.argv[1])
    cat_ids = sorted(coco.getCatIds())
    out = {"num_images": len(coco.getImgIds()), "num_annotations": len(coco.getAnnIds()),
           "annotations": {}}
    for ann in coco.loadAnns(coco.getAnnIds()):
        rle = coco.annToRLE(ann)  # compressed for every form (a file's string stays a str)
        if isinstance(rle["counts"], str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        out["annotations"][str(ann["id"])] = {
            "counts": rle["counts"].decode("ascii"),
            "mask_area": int(mask_utils.area(rle)),
            "mask_bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "label": cat_ids.index(ann["category_id"]),
            "area": ann["area"],
            "bbox": ann["bbox"],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
