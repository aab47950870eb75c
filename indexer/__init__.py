"""pixdex core: decode images, label them with a PyTorch classifier, index them in a catalogue."""

__version__ = "0.1.0"
