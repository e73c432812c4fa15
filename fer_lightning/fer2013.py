"""What FER-2013 is, for every layer: seven emotions, 48x48 grayscale faces, three splits."""

CLASS_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIDE = 48
PIXELS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE
# Training trains; PublicTest validates (early stopping, schedules, tuning, TTA, meta-learners); PrivateTest is
# touched once, for the final report.
SPLITS = ("Training", "PublicTest", "PrivateTest")
