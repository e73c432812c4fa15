"""How fast this machine trains and predicts, beside the study's Keras model."""
