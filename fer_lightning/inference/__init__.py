"""A trained net as a function from uint8 faces to logits: checkpoint loading, TTA, ONNX and runtimes."""
