"""kdtts: knowledge distillation for text-to-speech."""
__version__ = "0.1.0"
