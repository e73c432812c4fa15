"""Face ids across video frames: a face keeps its id while its box overlaps where that face was last seen.

Greedy matching on box overlap (intersection over union) between the faces of a frame and the live tracks,
best pairs first, is enough for a clip where faces move less than their own width between sampled frames. A
track not seen for ``max_missed`` sampled frames ends; a face that comes back after that gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fer_lightning.faces.detectors import Box


@dataclass
class _Track:
    box: Box
    missed: int = 0


@dataclass
class FaceTracker:
    """Call ``assign`` once per sampled frame, in order; it returns one id per box, stable across frames."""

    min_overlap: float = 0.3
    max_missed: int = 5
    _tracks: dict[int, _Track] = field(default_factory=dict)
    _next_id: int = 0

    def assign(self, boxes: list[Box]) -> list[int]:
        pairs = sorted(((box.overlap(track.box), i, track_id) for i, box in enumerate(boxes)
                        for track_id, track in self._tracks.items()), reverse=True)
        ids: dict[int, int] = {}
        for score, i, track_id in pairs:
            if score < self.min_overlap:
                break
            if i not in ids and track_id not in ids.values():
                ids[i] = track_id
        for i in range(len(boxes)):
            if i not in ids:
                ids[i], self._next_id = self._next_id, self._next_id + 1
        for track_id in list(self._tracks):
            if track_id not in ids.values():
                self._tracks[track_id].missed += 1
                if self._tracks[track_id].missed > self.max_missed:
                    del self._tracks[track_id]
        for i, box in enumerate(boxes):
            self._tracks[ids[i]] = _Track(box)
        return [ids[i] for i in range(len(boxes))]
