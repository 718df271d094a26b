"""Physical layer: channels, the digital and analog pipes, CBR, theory curves.

Imports nothing else of lgvsc.
"""
