"""Extension points for higher apps, without the journeys app importing them.

Higher apps register in their AppConfig.ready(): `touchpoint_annotators` are functions
(touchpoint ids) -> {touchpoint id: short text} whose texts the journey map shows beside each
touchpoint (feedback adds satisfaction). Each is called once per map, for all touchpoints.
"""

from collections.abc import Callable, Iterable

touchpoint_annotators: list[Callable[[list[int]], dict[int, str]]] = []


def register_touchpoint_annotator(annotator: Callable[[list[int]], dict[int, str]]) -> None:
    if annotator not in touchpoint_annotators:
        touchpoint_annotators.append(annotator)


def annotate_touchpoints(touchpoint_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = list(touchpoint_ids)
    notes: dict[int, list[str]] = {}
    if not ids:
        return notes
    for annotator in touchpoint_annotators:
        for touchpoint_id, text in annotator(ids).items():
            notes.setdefault(touchpoint_id, []).append(text)
    return notes
