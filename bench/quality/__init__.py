"""bench/quality: sessions through the real SessionController, scored by ltx2stream.quality (docs/quality.md)."""
