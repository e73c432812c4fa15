"""The network (a plain nn.Module built from config), its LightningModule, and the checkpoint file."""
