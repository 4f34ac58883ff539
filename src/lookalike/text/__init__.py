"""Words -> vectors in the image embedding space (the text tower): onnxruntime and tokenizers only."""

from lookalike.text.encoder import DEFAULT_TEXT_MODEL, TextEncoder, default_text_encoder

__all__ = ["DEFAULT_TEXT_MODEL", "TextEncoder", "default_text_encoder"]
