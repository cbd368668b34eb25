"""langsort: which language is spoken in every recording of an audio archive."""

__version__ = "0.1.0"
