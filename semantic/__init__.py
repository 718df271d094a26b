"""Keyframe selection, scorers, captioners, side info, keyframe codecs and
world-model decoders. May use ``lgvsc.link``; never ``lgvsc.sim``."""
