"""Regenerates `cider_reference.json`: CIDEr-D computed by the official COCO caption toolkit on fixed cases.

Needs `pip install pycocoevalcap==1.2` (not a project dependency; ~100 MB). Inputs are already tokenised (space
separated), so the toolkit's Java PTBTokenizer is not involved and the figures test the scorer alone:
    python tests/eval/data/make_cider_reference.py > tests/eval/data/cider_reference.json
"""

from __future__ import annotations

import json

from pycocoevalcap.cider.cider import Cider

CASES = {
    "coco_like": {
        "res": [
            "a man riding a horse on a beach",
            "two dogs play with a red ball in the grass",
            "a plate of food with broccoli and rice",
            "a man riding a horse",
            "",
        ],
        "gts": [
            ["a man rides a horse along the beach", "a person on a horse at the seaside", "man riding horse on sand"],
            ["two dogs playing with a ball", "dogs chase a red ball on the grass"],
            ["a plate with rice and broccoli", "food on a white plate"],
            ["a woman riding a bike down the street"],
            ["an empty room with a chair"],
        ],
    },
    "synthetic_like": {
        "res": [
            "the video shows two objects on a plain grey background the red square moves right",
            "<temp-010> <temp-040> the blue circle appears and moves left",
            "the green triangle is small",
            "the green triangle is small the green triangle is small",
        ],
        "gts": [
            ["the video shows two objects on a plain grey background the red square moves right"],
            ["<temp-012> <temp-040> the blue circle appears and moves left"],
            ["the yellow triangle is large"],
            ["the green triangle is small"],
        ],
    },
    "repeated_ngrams": {
        "res": ["the the the the", "a b c d e f g", "a b a b a b"],
        "gts": [["the cat"], ["a b c d e f g h i j k l m n o p q r s t"], ["a b", "b a", "a b a b"]],
    },
}


def main() -> None:
    out = {}
    for name, case in CASES.items():
        ids = list(range(len(case["res"])))
        score, scores = Cider().compute_score({i: case["gts"][i] for i in ids}, {i: [case["res"][i]] for i in ids})
        out[name] = {**case, "cider": float(score), "per_item": [float(s) for s in scores]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
