"""Micro-expression spotting: the face's local motion over time (motion.py, in landmark regions of
regions.py, read from a frame folder or a video by recording.py), the apex inside a labelled interval
and candidate intervals in a long recording (spotter.py), scored as MEGC scores spotting (scoring.py); a data
set's clip apexes spotted on the normalised face for ingest's `apex_repair: spot` (apex.py)."""
