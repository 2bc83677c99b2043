"""Record builders for the synthetic tasks with masks: referring (regions in), rvos (`[SEG]` out) and the
UFVideo-Bench style pixrqa / pixhqa / pixtrqa (text, time and masks together).

Input regions and output targets are the renderer's visible masks, RLE-encoded per absolute frame index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ufvideo.data.masks import encode_rle
from ufvideo.data.synthetic import language as lang
from ufvideo.data.synthetic.scene import Scene, SceneObject
from ufvideo.data.synthetic.text_tasks import base_record, grounding_target, pick, span_text, unique_by

MAX_REGION_FRAMES = 4  # UFVideo merges a multi-frame region into at most 4 tokens


def region(scene: Scene, obj: SceneObject, frames: list[int]) -> dict[str, Any]:
    """`{frame: RLE}` of the object's visible mask on the given frames (all inside its lifetime)."""
    return {str(t): encode_rle(scene.masks[obj.index, t]) for t in frames}


def track(scene: Scene, obj: SceneObject, first: int = 0) -> dict[str, Any]:
    """`{frame: RLE | None}` from `first` to the last frame; None where the object is not in the video."""
    return {
        str(t): encode_rle(scene.masks[obj.index, t]) if obj.start <= t <= obj.end else None
        for t in range(first, scene.num_frames)
    }


def spread_frames(obj: SceneObject, count: int) -> list[int]:
    """Up to `count` frames evenly spread over the object's lifetime, first and last included."""
    picks = np.linspace(obj.start, obj.end, num=min(count, obj.end - obj.start + 1))
    return sorted({int(round(v)) for v in picks})


def _single_answer(kind: str, obj: SceneObject, num_frames: int) -> str:
    if kind == "doing":
        return f"It is {lang.description(obj, num_frames)}."
    if kind == "detail":
        return lang.object_sentence(obj, num_frames)
    if kind == "looks":
        return f"It is {lang.article(obj.size)} {lang.full_name(obj)}."
    return f"It {lang.motion(obj)}."


def build_referring_single(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    """One object, its mask on one frame: VideoRefer's single-frame mode (`new_id`)."""
    obj = pick(rng, scene.objects)
    frame = int(rng.integers(obj.start, obj.end + 1))
    kind = pick(rng, list(lang.REFERRING_SINGLE))
    question = lang.REFERRING_SINGLE[kind]
    answer = _single_answer(kind, obj, scene.num_frames)
    record = base_record(scene, "referring", "referring-single", question, answer, [obj], kind)
    record.update(regions=[region(scene, obj, [frame])], region_mode="single")
    return record


def _multi_answer(kind: str, objs: list[SceneObject], num_frames: int) -> str:
    if kind == "doing" and len(objs) == 1:
        return f"object_1 is {lang.description(objs[0], num_frames)}."
    if kind == "detail":
        obj = objs[0]
        clause = lang.event_clause(obj, num_frames, timed=False)
        return f"object_1 is {lang.article(obj.size)} {lang.full_name(obj)}. It {clause}."
    if kind == "doing":
        return " ".join(f"object_{i + 1} is {lang.description(o, num_frames)}." for i, o in enumerate(objs))
    a, b = objs
    if kind == "colour":
        if a.colour == b.colour:
            return f"Yes, both are {a.colour}."
        return f"No, object_1 is {a.colour} and object_2 is {b.colour}."
    if a.size == b.size:
        return f"They are about the same size; both are {a.size}."
    return "object_1 is larger." if a.size == "large" else "object_2 is larger."


def build_referring_multi(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    """One or two objects, each given by its masks on up to four frames: VideoRefer's multi-frame mode."""
    count = 2 if len(scene.objects) >= 2 and rng.random() < 0.6 else 1
    objs = [scene.objects[int(i)] for i in rng.permutation(len(scene.objects))[:count]]
    if count == 1:
        prefix = "There is 1 object in the video: object_1: [<region>]. "
        table = lang.REFERRING_MULTI_ONE
    else:
        prefix = "There are 2 objects in the video: object_1: [<region>], object_2: [<region>]. "
        table = lang.REFERRING_MULTI_TWO
    kind = pick(rng, list(table))
    answer = _multi_answer(kind, objs, scene.num_frames)
    record = base_record(scene, "referring", "referring-multi", prefix + table[kind], answer, objs, kind)
    record.update(regions=[region(scene, o, spread_frames(o, MAX_REGION_FRAMES)) for o in objs], region_mode="multi")
    return record


def referring_expressions(scene: Scene, obj: SceneObject) -> list[str]:
    """Expressions (without article) that pick out `obj` alone in this video, from plain to specific."""
    exprs = [obj.name, f"{obj.name} {lang.motion_ing(obj)}"]
    if obj in unique_by(scene, lambda o: (o.shape, o.direction)):
        exprs.append(f"{obj.shape} {lang.motion_ing(obj)}")
    if obj in unique_by(scene, lambda o: o.colour):
        exprs.append(f"{obj.colour} object")
    if obj in unique_by(scene, lambda o: (o.size, o.shape)):
        exprs.append(f"{obj.size} {obj.shape}")
    if obj in unique_by(scene, lambda o: o.shape):
        exprs.append(obj.shape)
    return exprs


def build_rvos(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    """Referring video object segmentation: an expression in, `[SEG]` with the object's whole track out."""
    obj = pick(rng, scene.objects)
    expr = pick(rng, referring_expressions(scene, obj))
    template = pick(rng, lang.RVOS_QUESTIONS)
    # Half of UFVideo's templates put no article before the expression; ours carry none, so add it there.
    question = template.format(expr=expr if "the {expr}" in template else f"the {expr}")
    record = base_record(scene, "rvos", "rvos", question, pick(rng, lang.RVOS_ANSWERS), [obj], "expression")
    record["targets"] = [track(scene, obj)]
    record["meta"]["expression"] = expr
    return record


def build_pixrqa(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    """Region on the object's first frame in; description and its masks on every later frame out."""
    obj = pick(rng, scene.objects)
    answer = f"object_1 is {lang.description(obj, scene.num_frames)}. " + lang.MASK_SENTENCE.format(who="object_1")
    record = base_record(scene, "pixrqa", "pixrqa", pick(rng, lang.PIXRQA_QUESTIONS), answer, [obj], "region")
    record.update(
        regions=[region(scene, obj, [obj.start])], region_mode="single", targets=[track(scene, obj, obj.start + 1)]
    )
    return record


def build_pixhqa(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    """A text question names the object (by name, its unique motion or its unique colour); answer and mask out."""
    forms = [("name", o) for o in scene.objects]
    forms += [("motion", o) for o in unique_by(scene, lambda o: o.direction)]
    forms += [("colour", o) for o in unique_by(scene, lambda o: o.colour)]
    kind, obj = pick(rng, forms)
    question = lang.PIXHQA_QUESTIONS[kind].format(name=obj.name, motion=lang.motion(obj), colour=obj.colour)
    name = lang.full_name(obj)
    answer = f"The {name} {lang.event_clause(obj, scene.num_frames, False)}. " + lang.MASK_SENTENCE.format(
        who=f"the {obj.name}"
    )
    record = base_record(scene, "pixhqa", "pixhqa", question, answer, [obj], kind)
    record["targets"] = [track(scene, obj)]
    return record


def build_pixtrqa(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    """Like pixhqa, but the answer opens with the time sentence that UFVideo-Bench's parser splits off."""
    obj = grounding_target(scene, rng)
    question = pick(rng, lang.PIXTRQA_QUESTIONS).format(name=obj.name)
    name = lang.full_name(obj)
    answer = " ".join(
        (
            lang.TIME_SENTENCE.format(span=span_text(scene, obj)),
            f"It is {lang.article(name)} {name} that {lang.motion(obj)}.",
            lang.MASK_SENTENCE.format(who=f"the {obj.name}"),
        )
    )
    record = base_record(scene, "pixtrqa", "pixtrqa", question, answer, [obj], "span")
    record["targets"] = [track(scene, obj)]
    record["meta"]["spans"] = [[obj.start, obj.end]]
    return record
