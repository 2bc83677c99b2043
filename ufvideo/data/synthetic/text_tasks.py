"""Record builders for the text-output synthetic tasks: qa, mcqa, caption, tvg (grounding) and dvc (dense captions).

Each builder reads only what the renderer made visible (colours, shapes, sizes, motions, lifetimes), picks a
question form with the video's text RNG, and returns one curated record (DESIGN.md section 4.1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ufvideo.data.synthetic import language as lang
from ufvideo.data.synthetic.scene import COLOURS, SHAPES, Scene, SceneObject

T = TypeVar("T")
QA = tuple[str, str, list[SceneObject], str]  # question, answer, objects asked about, question kind
MCQA = tuple[str, str, list[str], list[SceneObject], str]  # question, correct option, distractor pool, objects, kind


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """A seeded choice that keeps the item's own type (numpy's `choice` would turn str into numpy.str_)."""
    return items[int(rng.integers(len(items)))]


def video_stem(scene: Scene) -> str:
    return f"s{scene.seed}-{scene.index:05d}"


def unique_by(scene: Scene, key: Callable[[SceneObject], Any]) -> list[SceneObject]:
    """Objects that `key` singles out in this video, i.e. that a phrase built from `key` refers to unambiguously."""
    counts = Counter(key(o) for o in scene.objects)
    return [o for o in scene.objects if counts[key(o)] == 1]


def base_record(
    scene: Scene, task: str, slug: str, question: str, answer: str, objects: list[SceneObject], kind: str
) -> dict[str, Any]:
    """The fields every synthetic record shares; `meta` lets tests and analyses trace an answer to the scene."""
    stem = video_stem(scene)
    return {
        "id": f"synthetic/{stem}/{slug}",
        "source": "synthetic",
        "task": task,
        "video": f"videos/{stem}.mp4",
        "conversations": [
            {"from": "human", "value": lang.VIDEO_PREFIX + question},
            {"from": "gpt", "value": answer},
        ],
        "duration": scene.duration,
        "fps": scene.fps,
        "num_frames": scene.num_frames,
        "height": scene.height,
        "width": scene.width,
        "meta": {"seed": scene.seed, "video_index": scene.index, "objects": [o.index for o in objects], "kind": kind},
    }


def _count_phrase(n: int, noun: str, noun_plural: str) -> str:
    if n == 0:
        return f"There are no {noun_plural}."
    return f"There is one {noun}." if n == 1 else f"There are {lang.number(n)} {noun_plural}."


def _qa_candidates(scene: Scene, rng: np.random.Generator) -> list[QA]:
    """Every question form that has a well-defined answer in this video."""
    objs, t = scene.objects, scene.num_frames
    n = len(objs)
    shape = pick(rng, [o.shape for o in objs] + [pick(rng, SHAPES)])  # mostly present shapes, sometimes absent
    n_shape = sum(o.shape == shape for o in objs)
    out: list[QA] = [
        (
            pick(rng, ("How many objects appear in the video?", "How many shapes are there in the video?")),
            _count_phrase(n, "object", "objects").replace(".", " in the video."),
            list(objs),
            "count",
        ),
        (
            f"How many {lang.PLURALS[shape]} are there in the video?",
            _count_phrase(n_shape, shape, lang.PLURALS[shape]),
            [o for o in objs if o.shape == shape],
            "count_shape",
        ),
    ]
    out += [
        (f"What colour is the {o.shape}?", f"The {o.shape} is {o.colour}.", [o], "colour")
        for o in unique_by(scene, lambda o: o.shape)
    ]
    out += [
        (
            f"What shape is the {o.colour} object?",
            f"The {o.colour} object is {lang.article(o.shape)} {o.shape}.",
            [o],
            "shape",
        )
        for o in unique_by(scene, lambda o: o.colour)
    ]
    o = pick(rng, objs)
    verb = pick(rng, (f"How does the {o.name} move?", f"What is the {o.name} doing?"))
    out.append((verb, f"The {o.name} {lang.motion(o)}.", [o], "motion"))
    o = pick(rng, objs)
    out.append((f"Is the {o.name} large or small?", f"The {o.name} is {o.size}.", [o], "size"))
    o = pick(rng, objs)
    kind = o.presence(t)
    yes = "Yes, it is visible for the whole video." if kind == "full" else f"No, it {lang.PRESENCE_CLAUSES[kind]}."
    out.append((f"Is the {o.name} in view for the whole video?", yes, [o], "presence"))
    return out


def _qa_record(scene: Scene, rng: np.random.Generator, slug: str, candidate: QA) -> dict[str, Any]:
    question, answer, objects, kind = candidate
    return base_record(scene, "qa", slug, question, answer, objects, kind)


def build_qa(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    return _qa_record(scene, rng, "qa", pick(rng, _qa_candidates(scene, rng)))


def _options(rng: np.random.Generator, correct: str, pool: Sequence[str]) -> tuple[list[str], int]:
    """Four shuffled options holding `correct` once; returns them and the correct index."""
    others = [p for p in dict.fromkeys(pool) if p != correct]
    chosen = [others[i] for i in rng.permutation(len(others))[:3]]
    options = [correct, *chosen]
    order = [int(i) for i in rng.permutation(len(options))]
    shuffled = [options[i] for i in order]
    return shuffled, shuffled.index(correct)


def _mcqa_candidates(scene: Scene, rng: np.random.Generator) -> list[MCQA]:
    """(question, correct option, distractor pool, objects, kind) for every well-defined multiple choice form."""
    objs = scene.objects
    motions = sorted({f"{v[0]} {v[2]}" for v in lang.MOTION_WORDS.values()})
    names = [f"the {c} {s}" for c in COLOURS for s in SHAPES]
    out = [
        (f"What colour is the {o.shape}?", o.colour, list(COLOURS), [o], "colour")
        for o in unique_by(scene, lambda o: o.shape)
    ]
    out += [
        (f"What shape is the {o.colour} object?", o.shape, list(SHAPES), [o], "shape")
        for o in unique_by(scene, lambda o: o.colour)
    ]
    o = pick(rng, objs)
    out.append((f"How does the {o.name} move?", lang.motion(o), motions, [o], "motion"))
    numbers = [lang.number(k) for k in range(1, 6)]
    out.append(("How many objects appear in the video?", lang.number(len(objs)), numbers, list(objs), "count"))
    present = {f"the {x.name}" for x in objs}
    absent = [n for n in names if n not in present]
    for o in unique_by(scene, lambda o: o.direction):
        pool = [f"the {x.name}" for x in objs if x is not o] + [absent[i] for i in rng.permutation(len(absent))[:3]]
        out.append((f"Which object {lang.motion(o)}?", f"the {o.name}", pool, [o], "which_motion"))
    return out


def _mcqa_record(scene: Scene, rng: np.random.Generator, slug: str, candidate: MCQA) -> dict[str, Any]:
    question, correct, pool, objects, kind = candidate
    options, answer_index = _options(rng, correct, pool)
    style = int(rng.integers(2))
    record = base_record(
        scene, "mcqa", slug, lang.mc_question(question, options, style), lang.LETTERS[answer_index], objects, kind
    )
    record["meta"].update(options=options, answer_index=answer_index)
    return record


def build_mcqa(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    return _mcqa_record(scene, rng, "mcqa", pick(rng, _mcqa_candidates(scene, rng)))


def _asks(kind: str, objects: Sequence[SceneObject | int]) -> tuple[str, tuple[int, ...]]:
    """What a question asks: its form and the objects it is about (records keep both in `meta`)."""
    return kind, tuple(sorted(o if isinstance(o, int) else o.index for o in objects))


def extra_questions(
    scene: Scene, rng: np.random.Generator, count: int, base: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Up to `count` more qa and mcqa records per video (slugs qa-2, mcqa-2, ...), each asking what no other record
    of its task in this video asks. Why: one question per video leaves the tiny model about ten examples per
    question form, too few to learn to copy the subject and read the attribute off the video."""
    records: list[dict[str, Any]] = []
    for task, candidates, make in (("qa", _qa_candidates, _qa_record), ("mcqa", _mcqa_candidates, _mcqa_record)):
        asked = {_asks(r["meta"]["kind"], r["meta"]["objects"]) for r in base if r["task"] == task}
        for k in range(2, count + 2):
            left = [c for c in candidates(scene, rng) if _asks(c[-1], c[-2]) not in asked]
            if not left:
                break
            choice = pick(rng, left)
            asked.add(_asks(choice[-1], choice[-2]))
            records.append(make(scene, rng, f"{task}-{k}", choice))
    return records


def caption_order(scene: Scene) -> list[SceneObject]:
    """Objects in the order a narrator meets them: by first frame, then left to right."""
    return sorted(scene.objects, key=lambda o: (o.start, int(o.path[o.start][0]), o.index))


def build_caption(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    n = len(scene.objects)
    noun = "object" if n == 1 else "objects"
    head = f"The video shows {lang.number(n)} {noun} on a {scene.texture} {scene.background} background."
    sentences = [lang.object_sentence(o, scene.num_frames) for o in caption_order(scene)]
    answer = " ".join([head, *sentences])
    return base_record(
        scene, "caption", "caption", pick(rng, lang.CAPTION_QUESTIONS), answer, caption_order(scene), "caption"
    )


def grounding_target(scene: Scene, rng: np.random.Generator) -> SceneObject:
    """Mostly an object that does not span the whole video, so the answer is not always the full clip."""
    partial = [o for o in scene.objects if o.presence(scene.num_frames) != "full"]
    return pick(rng, partial) if partial and rng.random() < 0.8 else pick(rng, scene.objects)


def span_text(scene: Scene, obj: SceneObject) -> str:
    return lang.frame_span(obj.start, obj.end, scene.fps, scene.duration)


def build_tvg(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    obj = grounding_target(scene, rng)
    template = pick(rng, lang.TVG_QUESTIONS)
    question = template.format(name=obj.name, event=f"the {obj.name} {lang.motion(obj)}")
    record = base_record(scene, "tvg", "tvg", question, span_text(scene, obj), [obj], "span")
    record["meta"]["spans"] = [[obj.start, obj.end]]
    return record


def build_dvc(scene: Scene, rng: np.random.Generator) -> dict[str, Any]:
    events = sorted(scene.objects, key=lambda o: (o.start, o.end, o.index))
    parts = [f"{span_text(scene, o)} {lang.object_sentence(o, scene.num_frames, timed=True)}" for o in events]
    record = base_record(scene, "dvc", "dvc", pick(rng, lang.DVC_QUESTIONS), " ".join(parts), events, "events")
    record["meta"]["spans"] = [[o.start, o.end] for o in events]
    return record
