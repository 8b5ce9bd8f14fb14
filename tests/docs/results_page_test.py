#!/usr/bin/env python3
"""docs/results.py against a results directory written here, with known numbers: the cells and
their (n=...) marks, a run stopped during its evaluation, the verdicts on the papers' claims, the
ablation's labels and its comparison with the defaults, the sample sweep's ratios and repeats, the
pixel-box comparison, the input clipping share, and the plot. Run by CTest (label "docs") with
Debian's python3."""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "results.py")
DEFAULTS = {"rounds": 10, "lambda_adv": 1.0, "student_lr": 1e-5}
DETECTION_SECTION = ("<!-- detection: begin (docs/make_detection_results.sh writes this section) -->"
                     "\n## Detection\n\nkept as it is\n<!-- detection: end -->")


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def run_report(root, name, top1, wall=10.0, v2=None, throughput=(100.0,), phases=None):
    """A finished run's report.json as psaq quantize writes it (top1 in [0, 1]; None: the run was
    stopped during its evaluation, so only the running mark is there)."""
    evaluation = ({"status": "running", "dataset": "d"} if top1 is None else
                  {"status": "complete", "dataset": "d", "float": {"top1": 0.9},
                   "quantized": {"top1": top1}})
    write_json(os.path.join(root, name, "report.json"), {
        "status": "complete", "wall_seconds": wall, "evaluation": evaluation,
        "options": {"v2": v2} if v2 else {},
        "ranks": [{"throughput": t} for t in throughput],
        "phases": phases or {"v2_sample_steps": {"max_seconds": wall - 1, "seconds": wall - 2}}})


def write_shard(path, images, mean, std):
    """One sample shard in the safetensors layout psaq writes (an "images" F32 tensor and the
    preprocessing in the metadata)."""
    data = np.asarray(images, "<f4").tobytes()
    header = json.dumps({"__metadata__": {"preprocess": json.dumps({"mean": mean, "std": std})},
                         "images": {"dtype": "F32", "shape": list(np.shape(images)),
                                    "data_offsets": [0, len(data)]}}).encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


class ResultsPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.root = os.path.join(cls.tmp.name, "results")
        sw, vit = os.path.join(root, "fmnist_swin"), os.path.join(root, "fmnist_vit")
        for t in (sw, vit):
            write_json(os.path.join(t, "float.json"), {"top1": 0.9062})
        # fmnist_swin: V2 clearly above V1 at both settings, V1 far below real at W4/A4.
        cells = {("8", "8"): {"real": (0.905, 0.906, 0.907), "noise": (0.90, 0.90, 0.90),
                              "v1": (0.80, 0.82, 0.84), "v2": (0.88, 0.88, 0.88),
                              "v1off": (0.81, 0.81, 0.82)},
                 ("4", "4"): {"real": (0.70, 0.71, 0.72), "noise": (0.60, 0.61, None),
                              "v1": (0.50, 0.50, 0.50), "v2": (0.65, 0.66, 0.67)}}
        for (w, a), sources in cells.items():
            for s, values in sources.items():
                for k, v in enumerate(values):
                    if v is not None:
                        run_report(sw, f"w{w}a{a}-{s}-s{k}", v,
                                   v2=DEFAULTS if s == "v2" else None)
        # fmnist_vit: only W8/A8 V1, seed 0 finished; seed 1 stopped during its evaluation.
        run_report(vit, "w8a8-v1-s0", 0.9058)
        run_report(vit, "w8a8-v1-s1", None)
        # Ablation at W4/A4: rounds 5 far above the defaults, lambda 0 within their noise; at
        # W8/A8: lambda 0.3 below the defaults (the main table's V2 cell, 88.00).
        for k, (hi, same) in enumerate(((0.80, 0.66), (0.81, 0.65), (0.82, 0.67))):
            run_report(sw, f"ablation-w4a4-rounds5-s{k}", hi, wall=5, v2={**DEFAULTS, "rounds": 5})
            run_report(sw, f"ablation-w4a4-lambda0-s{k}", same,
                       v2={**DEFAULTS, "lambda_adv": 0.0})
            run_report(sw, f"ablation-w8a8-lambda0.3-s{k}", 0.84 + k / 100,
                       v2={**DEFAULTS, "lambda_adv": 0.3})
        # Sweep: 32 samples on 1 and 2 ranks (V1), the one-rank run also repeated earlier.
        run_report(sw, "samples32-np1-v1", 0.70, wall=80, throughput=(400,))
        run_report(sw, "samples32-np2-v1", 0.63, wall=40, throughput=(200, 210))
        run_report(sw, "samples32-np1-v1.earlier-1", 0.70, wall=90)
        run_report(sw, "samples32-np2-v1.earlier-1", 0.63, wall=30)
        # The input range: pixel-box runs of W4/A4's V1 (above) and real images (the same).
        for k in range(3):
            run_report(sw, f"w4a4-v1-box-s{k}", 0.60 + k / 100)
            run_report(sw, f"w4a4-real-box-s{k}", 0.70 + k / 100)
        # V1 samples of seed 0 span [-0.5, 2] in normalized space; the test set is half 0, half 1
        # pixels, which mean 0.5 and std 0.5 map to -1 and 1: half of them fall outside.
        write_shard(os.path.join(sw, "samples-v1-s0", "samples", "shard-00000.safetensors"),
                    np.linspace(-0.5, 2, 2 * 1 * 4 * 4).reshape(2, 1, 4, 4), [0.5], [0.5])
        data_dir = os.path.join(cls.tmp.name, "fmnist")
        os.makedirs(data_dir)
        with gzip.open(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"), "wb") as f:
            f.write(bytes(16) + bytes([0, 255] * 8))
        cls.md, cls.png = os.path.join(cls.tmp.name, "r.md"), os.path.join(cls.tmp.name, "r.png")
        # The page as docs/make_detection_results.sh left it: its section must survive.
        with open(cls.md, "w") as f:
            f.write("# old page\n\n" + DETECTION_SECTION + "\n")
        subprocess.run([sys.executable, SCRIPT, "--results_dir", root,
                        "--teachers", "fmnist_swin fmnist_vit", "--bits", "8,8 4,4",
                        "--seeds", "0 1 2", "--ablation_seeds", "0 1 2",
                        "--ablation_bits", "4,4 8,8",
                        "--sweep", "32x1:v1 32x2:v1 128x1", "--input_range_bits", "8,8 4,4",
                        "--command", "THE COMMAND",
                        "--markdown", cls.md, "--plot", cls.png, "--data_dir", data_dir],
                       check=True)
        with open(cls.md) as f:
            cls.page = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def line(self, start):
        found = [line for line in self.page.splitlines() if line.startswith(start)]
        self.assertEqual(len(found), 1, f"one line starting {start!r} in:\n{self.page}")
        return found[0]

    def test_keeps_the_detection_section(self):
        self.assertNotIn("# old page", self.page)
        self.assertTrue(self.page.endswith(DETECTION_SECTION), self.page[-300:])

    def test_records_the_command_and_its_scope(self):
        self.assertIn("by `THE COMMAND`", self.page)
        self.assertIn("sample sweep at (samples x ranks) 32x1:v1, 32x2:v1, 128x1; input range "
                      "compared at 8,8, 4,4.", self.page)

    def test_main_table_cells(self):
        self.assertIn("Float: **90.62**", self.page)
        # Columns: bits, quantizer, 32 real, 32 noise, V1, V2, V1 official (--v1_official).
        self.assertEqual(self.line("| W8/A8 | psaq | 90.60"),
                         "| W8/A8 | psaq | 90.60 ± 0.10 | 90.00 ± 0.00 | 82.00 ± 2.00 | "
                         "88.00 ± 0.00 | 81.33 ± 0.58 |")
        # A seed that did not finish marks the cell; a source with no run reads n/a.
        self.assertIn("| W4/A4 | psaq | 71.00 ± 1.00 | 60.50 ± 0.71 (n=2) | 50.00 ± 0.00 | "
                      "66.00 ± 1.00 | n/a |", self.page)
        # A run stopped during its evaluation counts as missing, not as a crash or a zero.
        self.assertIn("| W8/A8 | psaq | n/a | n/a | 90.58 (n=1) | n/a | n/a |", self.page)

    def test_claims(self):
        v1 = self.line("- fmnist_swin, V1 vs real-image calibration")
        self.assertIn("W8/A8 -8.60 (below)", v1)
        self.assertIn("W4/A4 -21.00 (below)", v1)
        self.assertIn("V1 is below real images beyond noise at 2 of 2 settings", v1)
        v2 = self.line("- fmnist_swin, V2 vs V1")
        self.assertIn("W8/A8 +6.00 (above)", v2)  # noise: 2 × sqrt(2² + 0²) = 4 < 6
        self.assertIn("W4/A4 +16.00 (above)", v2)
        self.assertIn("Verdict: agrees at every setting.", v2)

    def test_ablation(self):
        self.assertIn("## V2 ablation (fmnist_swin, W4/A4)", self.page)
        self.assertIn("| defaults (lambda_adv = 1.0, rounds = 10) | 66.00 ± 1.00 | 10 |", self.page)
        self.assertEqual(self.line("| rounds = 5 |"),
                         "| rounds = 5 | 81.00 ± 1.00 | 5 | +15.00 (above) |")
        self.assertEqual(self.line("| lambda_adv = 0.0 |"),
                         "| lambda_adv = 0.0 | 66.00 ± 1.00 | 10 | +0.00 (within noise) |")
        self.assertIn("Highest: rounds = 5; the defaults' mean is 15.00 points below it.",
                      self.page)
        self.assertIn("the defaults should change", self.page)
        # The W8/A8 ablation is its own section, against the W8/A8 defaults.
        w8 = self.page.split("## V2 ablation (fmnist_swin, W8/A8)", 1)[1].split("\n## ", 1)[0]
        self.assertIn("| defaults (lambda_adv = 1.0) | 88.00 ± 0.00 | 10 |", w8)
        self.assertIn("| lambda_adv = 0.3 | 85.00 ± 1.00 | 10 | -3.00 (below) |", w8)
        self.assertNotIn("rounds = 5", w8)
        self.assertIn("Highest: the defaults, which are therefore kept.", w8)

    def test_sweep(self):
        self.assertEqual(self.line("| 32 | 1 |"),
                         "| 32 | 1 | V1 | 70.00 | 80 | 400 | v2 sample steps 79 | 70.00 / 90 |")
        self.assertEqual(self.line("| 32 | 2 |"),
                         "| 32 | 2 | V1 | 63.00 | 40 | 205 | v2 sample steps 39 | 63.00 / 30 |")
        self.assertNotIn("| 128 |", self.page)  # points without runs are left out
        self.assertIn("All 2 repeated runs reproduced their top-1 exactly.", self.page)
        self.assertIn("V1 at 32 samples 2.0× (per-rank rate 400 → 205, earlier runs 3.0×)",
                      self.page)

    def test_pixel_box_against_calibrated(self):
        self.assertIn("## Input range (fmnist_swin): calibrated or the pixel box", self.page)
        self.assertEqual(self.line("| W4/A4 | V1 |"),
                         "| W4/A4 | V1 | 50.00 ± 0.00 | 61.00 ± 1.00 | +11.00 (above) |")
        self.assertEqual(self.line("| W4/A4 | 32 real |"),
                         "| W4/A4 | 32 real | 71.00 ± 1.00 | 71.00 ± 1.00 | +0.00 (within noise) |")
        self.assertNotIn("| W8/A8 | V1 |", self.page)  # no pixel-box runs there
        self.assertIn("Pixel box against calibrated: above: W4/A4 V1; below: none; within noise: "
                      "W4/A4 32 real.", self.page)

    def test_input_range(self):
        # 32 values 2.5/31 apart, 4 per row: the 99th percentile is -0.5 + 0.99 × 2.5 = 1.975,
        # the mean neighbour difference (1 step along rows, 4 steps down columns, as many of
        # each) 2.5 × 2.5/31 = 0.2016.
        self.assertEqual(self.line("| V1 |"), "| V1 | [-0.50, 2.00] | 1.97 | 0.202 | 50.0% |")

    def test_plot(self):
        with open(self.png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
