"""Confidences that mean what they say: one softmax temperature fitted on PublicTest, and how far they miss.

A net's top probability is the confidence fer-predict reports. Trained on hard labels with a little smoothing, the
study's nets say 70% where they are right about 70% of the time; a student taught by softened teacher
probabilities (``experiment=distill``, temperature 2) says 50% there. Dividing the logits by one temperature ``T``
(Guo et al., 2017, "On calibration of modern neural networks") changes no answer, only how sure each one says it is.
``T`` is fitted on PublicTest, like every other choice; PrivateTest only reports the result. A stack's meta-learner
gives probabilities, not logits: their logarithms take the logits' place (``log_probabilities``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

TEMPERATURE_RANGE = (0.05, 20.0)
CONFIDENCE_BINS = 15  # equal-width bins of the top probability, the usual count for expected calibration error
PROBABILITY_FLOOR = 1e-6  # log 0 has no temperature: a pure tree leaf's 0 counts as one in a million


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` whose ``softmax(logits / T)`` gives the labels the highest likelihood, within ``TEMPERATURE_RANGE``.

    The negative log-likelihood is convex in ``1 / T`` (a log-sum-exp less a linear term), so its derivative only
    rises and bisection on where it crosses zero finds the one minimum. Faces all classified right by a margin have
    no minimum (sharper is always better): ``T`` stops at the range's low end.
    """
    z = np.asarray(logits, np.float64)
    true_logit = z[np.arange(len(z)), labels]

    def slope(inverse: float) -> float:  # d NLL / d (1/T)
        return float(np.mean((softmax(inverse * z, axis=1) * z).sum(1) - true_logit))

    low, high = np.log(1 / TEMPERATURE_RANGE[1]), np.log(1 / TEMPERATURE_RANGE[0])  # log(1/T), for relative steps
    if slope(np.exp(low)) >= 0:
        return TEMPERATURE_RANGE[1]
    if slope(np.exp(high)) <= 0:
        return TEMPERATURE_RANGE[0]
    for _ in range(40):  # halves the interval, about 6 wide, to 5e-12
        middle = (low + high) / 2
        low, high = (middle, high) if slope(np.exp(middle)) < 0 else (low, middle)
    return float(1 / np.exp((low + high) / 2))


def confidence_bins(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the top probability: how many faces, their mean confidence, their accuracy (NaN
    where a bin is empty)."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    which = np.minimum((confidence * CONFIDENCE_BINS).astype(int), CONFIDENCE_BINS - 1)
    counts = np.bincount(which, minlength=CONFIDENCE_BINS)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, confidence, CONFIDENCE_BINS) / counts
        accuracy = np.bincount(which, correct, CONFIDENCE_BINS) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The gap between confidence and accuracy, bin by bin, weighted by the faces in each: 0.05 means that the
    confidences reported are, on average, 5 points away from how often answers that sure are right."""
    return binned_calibration_error(*confidence_bins(probabilities, labels))


def binned_calibration_error(counts: np.ndarray, mean_confidence: np.ndarray, accuracy: np.ndarray) -> float:
    """``expected_calibration_error`` from bins ``confidence_bins`` has already counted (a figure plots them too)."""
    filled = counts > 0
    return float(np.sum(counts[filled] * np.abs(accuracy[filled] - mean_confidence[filled])) / counts.sum())


def errors_before_and_after(logits: np.ndarray, labels: np.ndarray, temperature: float) -> tuple[float, float]:
    """The expected calibration error of the net's own probabilities and of those at ``temperature``."""
    raw, scaled = (expected_calibration_error(softmax(logits / scale, axis=1), labels) for scale in (1.0, temperature))
    return raw, scaled


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities as logits: ``softmax(log_probabilities(p) / T)`` sharpens (T < 1) or flattens (T > 1) a
    meta-learner's probabilities as dividing a net's logits does, and at T = 1 gives them back (a 0 as about
    one in a million)."""
    return np.log(np.clip(probabilities, PROBABILITY_FLOOR, None))


def probability_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """A meta-learner's temperature: fitted on the logarithms of its probabilities as a net's on its logits, and kept
    only where it brings their confidences nearer their accuracy (1 otherwise).

    A tree's leaves give some faces probability 0 for their label; the likelihood of those few rules the fit, and the
    temperature that spares them flattens every answer: for the study's decision tree over three nets it was 3.1, and
    PrivateTest's calibration error went from 5.6% to 16.6% (docs/results.md).
    """
    logits = log_probabilities(probabilities)
    fitted = fit_temperature(logits, labels)
    before, after = errors_before_and_after(logits, labels, fitted)
    return fitted if after < before else 1.0
