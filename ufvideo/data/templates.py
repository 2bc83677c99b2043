"""UFVideo's fixed prompt and answer wording (MODEL.md section 2), one copy for every writer and reader of it.

The converters, the synthetic set and the RVOS evaluation prompt must agree word for word: the model is trained on
these strings and evaluated with one of them.
"""

from __future__ import annotations

from ufvideo.data.schema import SEG_TOKEN

# The RVOS questions UFVideo draws from ("image" is kept even for video, as in the public code).
RVOS_QUESTIONS = (
    "Can you segment the {expr} in this image?",
    "Please segment the {expr} in this image.",
    "What is {expr} in this image? Please respond with segmentation mask.",
    "What is {expr} in this image? Please output segmentation mask.",
)
# The public RVOS evaluation always asks with this one.
RVOS_EVAL_QUESTION = RVOS_QUESTIONS[1]
RVOS_ANSWERS = (
    "It is [SEG].",
    "Sure, [SEG].",
    "Sure, it is [SEG].",
    "Sure, the segmentation result is [SEG].",
    "[SEG].",
)
assert all(answer.count(SEG_TOKEN) == 1 for answer in RVOS_ANSWERS)
