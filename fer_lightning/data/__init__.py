"""The data layer: the FER-2013 CSV read strictly, augmentation, and the LightningDataModule."""
