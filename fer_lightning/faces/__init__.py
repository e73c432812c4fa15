"""Faces in pictures: detectors, aligned 48x48 crops, ids across video frames, test pictures with known boxes."""
