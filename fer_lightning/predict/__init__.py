"""Emotions of faces in photos and videos: inputs, face detection, batched prediction, test pictures."""
