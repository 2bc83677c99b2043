"""Words and templates of the synthetic tasks: how objects, motions and lifetimes are said, per task wording.

Every template lives in a module-level table so `corpus_texts` can enumerate all of them for an offline
tokenizer, and the wording follows the real data (MODEL.md sections 2 and 4.4) so a model trained here
sees the same text conventions as on the public sets.
"""

from __future__ import annotations

from ufvideo.data.schema import temp_token
from ufvideo.data.synthetic.scene import SceneObject
from ufvideo.data.templates import RVOS_ANSWERS, RVOS_QUESTIONS

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
LETTERS = ("A", "B", "C", "D")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "cross": "crosses"}

# (third person, participle, complement) per motion; linear directions are the DIRECTIONS keys.
MOTION_WORDS: dict[str, tuple[str, str, str]] = {
    "left": ("moves", "moving", "to the left"),
    "right": ("moves", "moving", "to the right"),
    "up": ("moves", "moving", "up"),
    "down": ("moves", "moving", "down"),
    "up-left": ("moves", "moving", "up and to the left"),
    "up-right": ("moves", "moving", "up and to the right"),
    "down-left": ("moves", "moving", "down and to the left"),
    "down-right": ("moves", "moving", "down and to the right"),
    "horizontal": ("bounces", "bouncing", "left and right"),
    "vertical": ("bounces", "bouncing", "up and down"),
    "": ("stays", "staying", "still"),
}
PRESENCE_CLAUSES = {
    "full": "is visible for the whole video",
    "enters": "appears partway through the video",
    "leaves": "disappears before the end of the video",
    "brief": "appears partway through the video and disappears before the end",
}

VIDEO_PREFIX = "<video>\n"
MVBENCH_SUFFIX = "Answer with the option's letter from the given choices directly and only give the best option."
SHORT_MC_SUFFIX = "Answer with the option's letter from the given choices directly."
TIME_SUFFIX = "Only give the start and end timestamp."

CAPTION_QUESTIONS = (
    "Describe the video in detail.",
    "Please describe this video.",
    "What happens in the video? Describe every object.",
    "Give a detailed caption of the video.",
)
REFERRING_SINGLE = {
    "doing": "What is the highlighted object [<region>] doing?",
    "detail": "Please give a detailed description of the highlighted object [<region>] in the video.",
    "looks": "What colour and shape is the highlighted object [<region>]?",
    "motion": "Describe the movement of the object [<region>].",
}
REFERRING_MULTI_ONE = {
    "doing": "What is object_1 doing?",
    "detail": "Please give a detailed description of object_1 in the video.",
}
REFERRING_MULTI_TWO = {
    "doing": "What are object_1 and object_2 doing?",
    "colour": "Do object_1 and object_2 have the same colour?",
    "size": "Which of object_1 and object_2 is larger?",
}
TVG_QUESTIONS = (
    "When does the {name} appear in the video? " + TIME_SUFFIX,
    "When is the {name} visible in the video? " + TIME_SUFFIX,
    "When is {event} occur in the video? " + TIME_SUFFIX,  # Charades-STA's evaluation prompt, verbatim
    "During which part of the video can the {name} be seen? Give the start and end timestamp.",
)
DVC_QUESTIONS = (
    "Localize every event in the video and describe each one with its start and end timestamps.",
    "Please list the events in the video with their timestamps.",
    "Describe the video densely: give the time span of each event and a short description.",
)
PIXRQA_QUESTIONS = (
    # UFVideo-Bench PixRQA's prompt verbatim (its grammar included), then two plainer variants.
    "There is 1 objects in the video: object_1: [<region>]. Please give a detailed description of what is the "
    "object_1 doing in the video. And please generate the mask in every frames?",
    "There is 1 object in the video: object_1: [<region>]. What is object_1 doing? Please also segment it in "
    "every frame.",
    "object_1: [<region>]. Describe object_1 and generate its mask in every frame.",
)
PIXHQA_QUESTIONS = {
    "name": "What is the {name} doing, and where is it?",
    "motion": "Which object {motion}? Describe it and segment it.",
    "colour": "Find the {colour} object, describe what it does and segment it.",
}
PIXTRQA_QUESTIONS = (
    "When does the {name} appear, what does it do, and where is it?",
    "When can the {name} be seen in the video? Describe it and segment it.",
    "Find when the {name} is in the video, say what it does and give its mask.",
)
MASK_SENTENCE = "The segmentation mask of {who} is [SEG]."
TIME_SENTENCE = "It appears during {span}."


def number(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def plural(shape: str, n: int) -> str:
    return shape if n == 1 else PLURALS[shape]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def full_name(obj: SceneObject) -> str:
    """'large red circle': size, colour and shape, the most complete way to name an object."""
    return f"{obj.size} {obj.colour} {obj.shape}"


def motion(obj: SceneObject) -> str:
    """Third-person verb phrase: 'moves to the left', 'bounces up and down', 'stays still'."""
    verb, _, rest = MOTION_WORDS[obj.direction]
    return f"{verb} {rest}"


def motion_ing(obj: SceneObject) -> str:
    """Participle phrase for referring expressions: 'moving to the left'."""
    _, verb, rest = MOTION_WORDS[obj.direction]
    return f"{verb} {rest}"


def event_clause(obj: SceneObject, num_frames: int, timed: bool) -> str:
    """What the object does over its lifetime: 'appears partway through the video and moves up'.

    With `timed` the span is given separately (dense captions), so the clause only says that it appears.
    """
    kind = obj.presence(num_frames)
    what = motion(obj)
    if kind == "full":
        return what
    if timed:
        return {"enters": f"appears and {what}", "leaves": f"{what} and then disappears"}.get(
            kind, f"appears, {what} and then disappears"
        )
    if kind == "enters":
        return f"appears partway through the video and {what}"
    if kind == "leaves":
        return f"{what} and disappears before the end of the video"
    return f"appears partway through the video, {what} and disappears before the end"


def object_sentence(obj: SceneObject, num_frames: int, timed: bool = False) -> str:
    """One capitalised sentence for captions: 'A large red circle moves to the left.'"""
    name = full_name(obj)
    return f"{article(name).capitalize()} {name} {event_clause(obj, num_frames, timed)}."


def description(obj: SceneObject, num_frames: int) -> str:
    """'a large red circle that moves to the left' plus its lifetime when that is not the whole video."""
    name = full_name(obj)
    text = f"{article(name)} {name} that {motion(obj)}"
    kind = obj.presence(num_frames)
    if kind != "full":
        text += f"; it {PRESENCE_CLAUSES[kind]}"
    return text


def frame_span(start: int, end: int, fps: int, duration: float) -> str:
    """`{<TEMP-a><TEMP-b>}` for frames start..end inclusive: the span [start/fps, (end+1)/fps] seconds."""
    return "{" + temp_token(time_token(start / fps, duration)) + temp_token(time_token((end + 1) / fps, duration)) + "}"


def time_token(seconds: float, duration: float) -> int:
    """k = round(99 t / duration), rounding halves up (Python's round() would round them to even)."""
    return min(99, max(0, int(99.0 * seconds / duration + 0.5)))


def mc_question(question: str, options: list[str], style: int) -> str:
    """Multiple choice in MVBench's layout (style 0) or the inline VideoRefer/LLaVA-Video layout (style 1)."""
    if style == 0:
        lines = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
        return f"Question: {question}\nOptions:\n{lines}\n{MVBENCH_SUFFIX}"
    inline = " ".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    return f"{question} {inline}. {SHORT_MC_SUFFIX}"


def template_texts() -> list[str]:
    """Every template of this module with its placeholders filled by a sample, for the tokenizer corpus."""
    fill = {
        "name": "red circle",
        "event": "the red circle moves to the left",
        "expr": "red circle moving to the left",
        "motion": "moves to the left",
        "colour": "red",
        "who": "object_1",
        "span": "{" + temp_token(0) + temp_token(99) + "}",
    }
    texts: list[str] = [MVBENCH_SUFFIX, SHORT_MC_SUFFIX, TIME_SUFFIX]
    tables = (
        CAPTION_QUESTIONS,
        tuple(REFERRING_SINGLE.values()),
        tuple(REFERRING_MULTI_ONE.values()),
        tuple(REFERRING_MULTI_TWO.values()),
        RVOS_QUESTIONS,
        RVOS_ANSWERS,
        TVG_QUESTIONS,
        DVC_QUESTIONS,
        PIXRQA_QUESTIONS,
        tuple(PIXHQA_QUESTIONS.values()),
        PIXTRQA_QUESTIONS,
        tuple(PRESENCE_CLAUSES.values()),
    )
    for table in tables:
        texts.extend(t.format(**fill) for t in table)
    texts.extend(t.format(**fill) for t in (MASK_SENTENCE, TIME_SENTENCE))
    return texts
