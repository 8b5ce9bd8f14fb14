#!/usr/bin/env python3
"""docs/detection_results.py against a results directory written here, with known numbers: the
cells (AP in points, mean ± sd, (n=...) marks), the V1 generation time, the two goals' verdicts,
the ablation rows, and the splice: the section replaces its markers' content and leaves the rest
of the page, and docs/results.py keeps it when it rewrites the page. Run by CTest (label "docs")
with Debian's python3."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
SCRIPT = os.path.join(DOCS, "detection_results.py")
sys.path.insert(0, DOCS)
from detection_results import BEGIN, END, existing_section  # noqa: E402


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def run(root, name, box, mask, wall=20.0):
    """A finished detector run's report.json (AP as fractions, as psaq writes them)."""
    write_json(os.path.join(root, "runs", name, "report.json"), {
        "status": "complete", "wall_seconds": wall,
        "evaluation": {"status": "complete", "quantized": {"box_ap": box, "mask_ap": mask}}})


class DetectionPageTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.root = os.path.join(self.tmp.name, "results")
        write_json(os.path.join(root, "float.json"),
                   {"images": 200, "box": {"AP": 0.1800}, "segm": {"AP": 0.1200}})
        for s, d in (("0", -0.001), ("1", 0.0), ("2", 0.001)):
            run(root, f"w8a8-v2-s{s}", 0.1750 + d, 0.1180 + d, wall=30.0)   # 17.50 ± 0.10
            run(root, f"w4a8-v2-s{s}", 0.1700 + d, 0.0900 + d)              # 17.00 ± 0.10
            run(root, f"w4a8-noise-s{s}", 0.1650 + d, 0.0950 + d)           # 16.50 ± 0.10
            run(root, f"w8a8-noise-s{s}", 0.1780 + d, 0.1190 + d)
            write_json(os.path.join(root, "runs", f"samples-v1-s{s}", "report.json"),
                       {"status": "complete", "wall_seconds": 100.0})
        run(root, "w8a8-v1-s0", 0.1770, 0.1170, wall=10.0)  # one seed only: (n=1)
        for s in ("0", "1"):
            run(root, f"ablation-size160-s{s}", 0.1720, 0.0920, wall=60.0)
        self.md = os.path.join(self.tmp.name, "results.md")
        with open(self.md, "w") as f:
            f.write("# Results\n\nclassifier text\n\n" + BEGIN + "\nold section\n" + END +
                    "\n\ntail text\n")

    def tearDown(self):
        self.tmp.cleanup()

    def generate(self):
        subprocess.run([sys.executable, SCRIPT, "--results_dir", self.root, "--bits", "8,8 4,8",
                        "--seeds", "0 1 2", "--methods", "noise v1 v2", "--ablation_seeds", "0 1 2",
                        "--v2_flags", "--image_size=96", "--command", "CMD", "--markdown", self.md],
                       check=True)
        with open(self.md) as f:
            return f.read()

    def test_cells_verdicts_and_ablation(self):
        page = self.generate()
        self.assertIn("| float | — | 18.00 | 12.00 | | | |", page)
        self.assertIn("| W8/A8 | V2 | 17.50 ± 0.10 | 11.80 ± 0.10 | -0.50 | -0.20 | 30 |", page)
        self.assertIn("| W8/A8 | V1 | 17.70 (n=1) | 11.70 (n=1) | -0.30 | -0.30 | 10 + 100 gen. |",
                      page)
        self.assertIn("| W4/A8 | 32 noise | 16.50 ± 0.10 | 9.50 ± 0.10 |", page)
        self.assertIn("| W4/A8 | V1 | n/a | n/a | n/a | n/a | n/a + 100 gen. |", page)
        # Within 1.0 box AP of float: met. V2 - noise at W4/A8: box +0.50 > 2 x pooled sd 0.28.
        self.assertIn("V2 minus float is -0.50 box AP and -0.20 mask AP — **met**.", page)
        self.assertIn("box +0.50 (above), mask -0.50 (below) — **met**.", page)
        self.assertIn("| V2 (D on the FPN), samples of 160 px (the scenes' size) | 17.20 ± 0.00 (n=2) |", page)
        self.assertIn("`CMD`", page)

    def test_missed_goals_say_by_how_much(self):
        for s, d in (("0", -0.001), ("1", 0.0), ("2", 0.001)):
            run(self.root, f"w8a8-v2-s{s}", 0.1650 + d, 0.1100 + d)
            run(self.root, f"w4a8-v2-s{s}", 0.1655 + d, 0.0950 + d)
        page = self.generate()
        self.assertIn("**missed** by 0.50 box AP.", page)
        self.assertIn("box +0.05 (within noise)", page)
        self.assertIn("**missed**: the difference is not beyond the noise.", page)

    def test_splice_keeps_the_rest_and_results_py_keeps_the_section(self):
        page = self.generate()
        self.assertTrue(page.startswith("# Results\n\nclassifier text\n\n" + BEGIN))
        self.assertTrue(page.endswith(END + "\n\ntail text\n"))
        self.assertNotIn("old section", page)
        self.assertEqual(page.count(BEGIN), 1)
        section = existing_section(self.md)
        self.assertEqual(section[0], BEGIN)
        self.assertEqual(section[-1], END)
        self.assertIn("## Detection: the shipped Swin Mask R-CNN (issue 20)", section)
        # A page without markers gets the section appended.
        with open(self.md, "w") as f:
            f.write("# Results\n")
        page = self.generate()
        self.assertTrue(page.startswith("# Results\n\n" + BEGIN))


if __name__ == "__main__":
    unittest.main()
